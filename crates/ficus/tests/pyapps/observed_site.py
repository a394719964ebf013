"""The legacy Django site plus a slow streaming URL and one streaming from the database, with
Django's request_finished signal recorded in the file named by FINISHED_LOG: how the tests see
that ficus called close()."""

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacy.settings")

import django  # noqa: E402

django.setup()

from django.core.signals import request_finished  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

import legacy.urls  # noqa: E402


def slow_stream(request):
    def rows():
        for i in range(int(request.GET.get("n", "50"))):
            yield f"row {i}\n"
            time.sleep(0.1)

    return StreamingHttpResponse(rows(), content_type="text/plain")


def db_stream(request):
    """Article rows fetched one at a time from an open cursor while the response streams, so a
    client leaving mid-stream leaves Django with a cursor and a connection to clean up."""
    from articles.models import Article

    def rows():
        for pk, title in Article.objects.values_list("pk", "title").iterator(chunk_size=1):
            yield f"{pk},{title}\n".encode() + b" " * 16384

    return StreamingHttpResponse(rows(), content_type="text/csv")


legacy.urls.urlpatterns.append(path("_test/slow-stream/", slow_stream))
legacy.urls.urlpatterns.append(path("_test/db-stream/", db_stream))


def _record(sender, **kwargs):
    with open(os.environ["FINISHED_LOG"], "a") as f:
        f.write("finished\n")


request_finished.connect(_record)

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
