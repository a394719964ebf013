from django.urls import path

from . import views

urlpatterns = [
    path("media/upload/", views.upload, name="media-upload"),
    # Matches MEDIA_URL, so FieldFile.url points here.
    path("media/files/<path:name>", views.serve_file, name="media-file"),
    path("api/media/<path:key>/signed-url/", views.signed_url, name="api-media-signed-url"),
]
