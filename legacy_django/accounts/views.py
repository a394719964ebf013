"""Account pages; authentication itself is django.contrib.auth's."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def profile(request):
    articles = request.user.articles.all()
    return render(request, "accounts/profile.html", {"articles": articles})
