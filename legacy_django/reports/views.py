"""CSV exports, streamed so large tables never sit in memory at once."""
import csv

from django.http import StreamingHttpResponse
from django.views.decorators.http import require_GET

from articles.models import Article

HEADER = ["id", "title", "slug", "author", "published_at", "view_count", "tags"]


class Echo:
    """A write-only pseudo-buffer: csv.writer hands each row straight back."""

    def write(self, value):
        return value


def article_rows():
    yield HEADER
    articles = (
        Article.objects.select_related("author").prefetch_related("tags").order_by("id")
    )
    # With prefetch_related, iterator() needs a chunk size to batch the
    # tag lookups.
    for article in articles.iterator(chunk_size=200):
        yield [
            article.pk,
            article.title,
            article.slug,
            article.author.get_username(),
            article.published_at.isoformat(),
            article.view_count,
            ";".join(sorted(tag.slug for tag in article.tags.all())),
        ]


@require_GET
def articles_csv(request):
    writer = csv.writer(Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in article_rows()),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="articles.csv"'
    return response
