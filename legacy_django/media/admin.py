from django.contrib import admin

from .models import Upload


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["file", "original_name", "size", "content_type", "uploaded_at"]
    search_fields = ["original_name", "file"]
    date_hierarchy = "uploaded_at"
