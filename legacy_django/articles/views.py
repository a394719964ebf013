"""HTML pages for reading articles and leaving comments."""
from django.contrib import messages
from django.core.paginator import InvalidPage, Paginator
from django.db.models import F
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from .forms import CommentForm
from .models import Article, Tag

ARTICLES_PER_PAGE = 10


def home(request):
    latest = Article.objects.select_related("author")[:5]
    return render(request, "home.html", {"latest": latest, "tags": Tag.objects.all()})


def article_list(request):
    articles = Article.objects.select_related("author").prefetch_related("tags")
    tag = None
    if tag_slug := request.GET.get("tag"):
        tag = get_object_or_404(Tag, slug=tag_slug)
        articles = articles.filter(tags=tag)

    paginator = Paginator(articles, ARTICLES_PER_PAGE)
    # Paginator.page() rather than get_page(): a bad page number is a
    # broken link, not a request for some other page.
    try:
        page = paginator.page(request.GET.get("page", 1))
    except InvalidPage:
        raise Http404("No such page")

    return render(
        request,
        "articles/article_list.html",
        {"page": page, "articles": page.object_list, "tag": tag, "tags": Tag.objects.all()},
    )


def article_detail(request, slug):
    article = get_object_or_404(Article.objects.select_related("author"), slug=slug)

    if request.method == "POST":
        form = CommentForm(request.POST)
        if form.is_valid():
            comment = form.save(commit=False)
            comment.article = article
            comment.save()
            messages.success(request, "Thanks, your comment was posted.")
            return redirect(article)
    else:
        form = CommentForm()
        # F() so concurrent readers do not overwrite each other's increments.
        Article.objects.filter(pk=article.pk).update(view_count=F("view_count") + 1)

    return render(
        request,
        "articles/article_detail.html",
        {
            "article": article,
            "tags": article.tags.all(),
            "comments": article.comments.all(),
            "form": form,
        },
    )
