"""JSON API for articles, used by scripts and the front end."""
import json
import logging

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from .models import Article, Tag
from .search import search_articles

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
EXCERPT_LENGTH = 200


def error(message, status, **extra):
    return JsonResponse({"error": message, **extra}, status=status)


def article_to_dict(article, *, with_body):
    data = {
        "id": article.pk,
        "title": article.title,
        "slug": article.slug,
        "author": article.author.get_username(),
        "tags": sorted(tag.slug for tag in article.tags.all()),
        "published_at": article.published_at.isoformat(),
        "view_count": article.view_count,
        "url": article.get_absolute_url(),
    }
    if with_body:
        data["body"] = article.body
    else:
        data["excerpt"] = article.body[:EXCERPT_LENGTH]
    return data


@require_http_methods(["GET", "POST"])
def article_collection(request):
    if request.method == "POST":
        return create_article(request)
    return list_articles(request)


def list_articles(request):
    try:
        page_size = int(request.GET.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        return error("page_size must be an integer", 400)
    if page_size < 1:
        return error("page_size must be at least 1", 400)
    page_size = min(page_size, MAX_PAGE_SIZE)

    articles = Article.objects.select_related("author").prefetch_related("tags")
    articles = search_articles(articles, request.GET.get("q", ""))

    paginator = Paginator(articles, page_size)
    try:
        page = paginator.page(request.GET.get("page", 1))
    except PageNotAnInteger:
        return error("invalid page", 404)
    except EmptyPage:
        return error("page out of range", 404)

    return JsonResponse(
        {
            "count": paginator.count,
            "page": page.number,
            "num_pages": paginator.num_pages,
            "results": [article_to_dict(a, with_body=False) for a in page.object_list],
        }
    )


def create_article(request):
    # Session auth only; CsrfViewMiddleware has already vetted the token.
    if not request.user.is_authenticated:
        return error("authentication required", 403)

    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return error("invalid JSON", 400)
    if not isinstance(payload, dict):
        return error("expected a JSON object", 400)

    missing = [
        field
        for field in ("title", "body")
        if not isinstance(payload.get(field), str) or not payload[field].strip()
    ]
    if missing:
        return error("missing fields", 400, fields=missing)

    title = payload["title"].strip()
    if len(title) > Article._meta.get_field("title").max_length:
        return error("title too long", 400, fields=["title"])

    tag_names = payload.get("tags", [])
    if not isinstance(tag_names, list) or not all(isinstance(t, str) for t in tag_names):
        return error("tags must be a list of strings", 400, fields=["tags"])
    tag_names = [t.strip() for t in tag_names if t.strip()]
    if any(not slugify(name) for name in tag_names):
        return error("tags must contain letters or digits", 400, fields=["tags"])

    # Two requests may pick the same free slug; the unique constraint decides
    # and the loser tries the next one.
    for _ in range(5):
        try:
            with transaction.atomic():
                article = Article.objects.create(
                    title=title,
                    slug=unique_slug(title),
                    body=payload["body"],
                    author=request.user,
                    published_at=timezone.now(),
                )
                article.tags.set(get_or_create_tags(tag_names))
            break
        except IntegrityError:
            continue
    else:
        return error("could not allocate a unique slug", 409)

    logger.info("article %s created by %s", article.pk, request.user.get_username())
    response = JsonResponse(article_to_dict(article, with_body=True), status=201)
    response["Location"] = reverse("api-article-detail", args=[article.pk])
    return response


def unique_slug(title):
    max_length = Article._meta.get_field("slug").max_length - 10
    base = slugify(title)[:max_length].strip("-") or "article"
    slug, suffix = base, 2
    while Article.objects.filter(slug=slug).exists():
        slug = f"{base}-{suffix}"
        suffix += 1
    return slug


def get_or_create_tags(names):
    tags = []
    for name in names:
        slug = slugify(name)[:50]
        tag = Tag.objects.filter(slug=slug).first() or Tag.objects.filter(name=name).first()
        if tag is None:
            tag = Tag.objects.create(name=name[:50], slug=slug)
        tags.append(tag)
    return tags


@require_GET
def article_detail(request, pk):
    article = (
        Article.objects.select_related("author").prefetch_related("tags").filter(pk=pk).first()
    )
    if article is None:
        return error("not found", 404)
    return JsonResponse(article_to_dict(article, with_body=True))
