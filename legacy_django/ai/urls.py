from django.urls import path

from . import views

urlpatterns = [
    path("api/summarize/", views.summarize, name="api-summarize"),
    path("api/articles/<int:pk>/related/", views.related, name="api-article-related"),
]
