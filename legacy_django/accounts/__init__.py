"""Sign-in, sign-out and the signed-in user's profile page."""
