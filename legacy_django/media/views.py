"""Upload form, file serving and signed object-storage URLs."""
import logging
import mimetypes
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import render
from django.utils._os import safe_join
from django.views.decorators.http import require_GET, require_http_methods

from . import signing
from .forms import UploadForm
from .models import Upload

logger = logging.getLogger(__name__)

DEFAULT_EXPIRES = 3600
MAX_EXPIRES = 7 * 24 * 3600  # a week, the usual ceiling for pre-signed URLs


@require_http_methods(["GET", "POST"])
def upload(request):
    if request.method == "GET":
        recent = Upload.objects.all()[:10]
        return render(request, "media/upload.html", {"form": UploadForm(), "recent": recent})

    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return JsonResponse({"error": "missing fields", "fields": sorted(form.errors)}, status=400)

    uploaded = form.cleaned_data["file"]
    record = Upload(
        original_name=uploaded.name,
        size=uploaded.size,
        content_type=uploaded.content_type
        or mimetypes.guess_type(uploaded.name)[0]
        or "application/octet-stream",
    )
    # The storage picks the final name: it sanitises it and never overwrites.
    record.file.save(uploaded.name, uploaded, save=False)
    record.save()
    logger.info("stored upload %s (%d bytes)", record.file.name, record.size)

    response = JsonResponse(
        {
            "id": record.pk,
            "name": record.file.name,
            "original_name": record.original_name,
            "size": record.size,
            "content_type": record.content_type,
            "url": record.file.url,
        },
        status=201,
    )
    response["Location"] = record.file.url
    return response


@require_GET
def serve_file(request, name):
    try:
        # safe_join refuses anything that resolves outside MEDIA_ROOT.
        path = Path(safe_join(settings.MEDIA_ROOT, name))
    except (SuspiciousFileOperation, ValueError):
        raise Http404("No such file")
    if not path.is_file():
        raise Http404("No such file")
    return FileResponse(path.open("rb"), filename=path.name)


@require_GET
def signed_url(request, key):
    provider = request.GET.get("provider", "")
    if provider not in signing.PROVIDERS:
        return JsonResponse(
            {"error": "provider must be one of: " + ", ".join(signing.PROVIDERS)}, status=400
        )
    try:
        expires = int(request.GET.get("expires", DEFAULT_EXPIRES))
    except ValueError:
        expires = 0
    if not 1 <= expires <= MAX_EXPIRES:
        return JsonResponse(
            {"error": f"expires must be an integer between 1 and {MAX_EXPIRES}"}, status=400
        )

    url = signing.signed_url(provider, key, expires)
    return JsonResponse({"provider": provider, "key": key, "url": url, "expires": expires})
