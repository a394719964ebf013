from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("articles/", views.article_list, name="article-list"),
    path("articles/<slug:slug>/", views.article_detail, name="article-detail"),
    path("api/articles/", api.article_collection, name="api-article-list"),
    path("api/articles/<int:pk>/", api.article_detail, name="api-article-detail"),
]
