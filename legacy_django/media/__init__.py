"""File uploads kept under MEDIA_ROOT, and signed URLs for object storage."""
