"""Root URLconf: each app owns its routes, the project adds admin and health."""
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("articles.urls")),
    path("", include("ai.urls")),
    path("", include("media.urls")),
    path("", include("reports.urls")),
]
