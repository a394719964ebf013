from django.urls import path

from . import views

urlpatterns = [
    path("reports/articles.csv", views.articles_csv, name="report-articles-csv"),
]
