"""Tests for the article pages, the JSON API and the seed command."""
import io
import json
import re
from datetime import datetime, timedelta, timezone

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, TestCase, override_settings

from .models import Article, Comment, Tag

User = get_user_model()

BASE_TIME = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def make_article(author, number, **fields):
    defaults = {
        "title": f"Article {number}",
        "slug": f"article-{number}",
        "body": f"Body of article {number}.",
        "published_at": BASE_TIME + timedelta(days=number),
    }
    defaults.update(fields)
    return Article.objects.create(author=author, **defaults)


def without_csrf_token(html):
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


class ModelTests(TestCase):
    def test_articles_are_ordered_newest_first_then_by_id(self):
        author = User.objects.create(username="ana")
        older = make_article(author, 1)
        same_a = make_article(author, 2, published_at=BASE_TIME + timedelta(days=5))
        same_b = make_article(author, 3, published_at=BASE_TIME + timedelta(days=5))

        self.assertEqual(list(Article.objects.all()), [same_b, same_a, older])

    def test_absolute_url_is_the_detail_page(self):
        article = make_article(User.objects.create(username="ana"), 1)
        self.assertEqual(article.get_absolute_url(), "/articles/article-1/")


class HtmlPageTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.author = User.objects.create(username="ana")
        cls.python = Tag.objects.create(name="Python", slug="python")
        cls.rust = Tag.objects.create(name="Rust", slug="rust")
        cls.articles = [make_article(cls.author, n) for n in range(1, 13)]
        for article in cls.articles[:3]:
            article.tags.add(cls.python)
        cls.articles[0].tags.add(cls.rust)

    def test_home_shows_the_five_latest_articles_and_the_tags(self):
        response = self.client.get("/")

        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "home.html")
        self.assertEqual(
            [a.title for a in response.context["latest"]],
            ["Article 12", "Article 11", "Article 10", "Article 9", "Article 8"],
        )
        self.assertContains(response, "Article 8")
        self.assertNotContains(response, "Article 7<")
        self.assertContains(response, "?tag=python")
        self.assertContains(response, "?tag=rust")

    def test_list_is_paginated_ten_per_page(self):
        first = self.client.get("/articles/")
        second = self.client.get("/articles/?page=2")

        self.assertEqual(len(first.context["articles"]), 10)
        self.assertEqual(first.context["articles"][0].title, "Article 12")
        self.assertContains(first, "Page 1 of 2")
        self.assertEqual([a.title for a in second.context["articles"]], ["Article 2", "Article 1"])

    def test_bad_page_numbers_are_not_found(self):
        for page in ("3", "0", "abc"):
            with self.subTest(page=page):
                response = self.client.get(f"/articles/?page={page}")
                self.assertEqual(response.status_code, 404)
                self.assertTemplateUsed(response, "404.html")

    def test_list_filters_by_tag(self):
        response = self.client.get("/articles/?tag=python")

        self.assertEqual(
            [a.title for a in response.context["articles"]],
            ["Article 3", "Article 2", "Article 1"],
        )
        self.assertContains(response, "Articles tagged “Python”")

    def test_unknown_tag_is_not_found(self):
        self.assertEqual(self.client.get("/articles/?tag=cobol").status_code, 404)

    def test_detail_shows_the_article_and_its_comments(self):
        article = self.articles[0]
        Comment.objects.create(article=article, author_name="Zoë", body="Lovely café.")

        response = self.client.get("/articles/article-1/")

        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "articles/article_detail.html")
        self.assertContains(response, "<h1>Article 1</h1>", html=True)
        self.assertContains(response, "Zoë")
        self.assertContains(response, "Lovely café.")
        self.assertContains(response, 'name="csrfmiddlewaretoken"')

    def test_detail_counts_views_without_showing_the_count(self):
        first = self.client.get("/articles/article-1/")
        second = self.client.get("/articles/article-1/")

        self.assertEqual(Article.objects.get(slug="article-1").view_count, 2)
        # Only the per-render CSRF mask may differ between two reads.
        self.assertEqual(
            without_csrf_token(first.content.decode()), without_csrf_token(second.content.decode())
        )

    def test_missing_article_is_not_found(self):
        response = self.client.get("/articles/no-such-article/")
        self.assertEqual(response.status_code, 404)
        self.assertContains(response, "Page not found", status_code=404)


class CommentTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.article = make_article(User.objects.create(username="ana"), 1)

    def test_posting_a_comment_redirects_back_to_the_article(self):
        response = self.client.post(
            "/articles/article-1/", {"author_name": "Zoë", "body": "Très bien."}
        )

        self.assertRedirects(response, "/articles/article-1/", fetch_redirect_response=False)
        comment = Comment.objects.get()
        self.assertEqual((comment.article, comment.author_name, comment.body), (self.article, "Zoë", "Très bien."))
        page = self.client.get("/articles/article-1/")
        self.assertContains(page, "Très bien.")
        self.assertContains(page, "your comment was posted")

    def test_posting_does_not_count_as_a_view(self):
        self.client.post("/articles/article-1/", {"author_name": "Zoë", "body": "Hi"})
        self.assertEqual(Article.objects.get().view_count, 0)

    def test_invalid_comment_shows_the_errors(self):
        response = self.client.post("/articles/article-1/", {"author_name": "", "body": ""})

        self.assertEqual(response.status_code, 200)
        self.assertFormError(response.context["form"], "author_name", "This field is required.")
        self.assertFalse(Comment.objects.exists())

    def test_comment_needs_a_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        response = client.post("/articles/article-1/", {"author_name": "Zoë", "body": "Hi"})

        self.assertEqual(response.status_code, 403)
        self.assertFalse(Comment.objects.exists())


class ApiListTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.author = User.objects.create(username="ana")
        cls.zurich = Tag.objects.create(name="Zürich", slug="zurich")
        cls.food = Tag.objects.create(name="Food", slug="food")
        cls.articles = [make_article(cls.author, n, body="x" * 300) for n in range(1, 24)]
        cls.cafe = make_article(
            cls.author,
            30,
            title="Café culture",
            slug="cafe-culture",
            body="A NAÏVE look at coffee in Zürich and 東京.",
        )
        cls.cafe.tags.add(cls.zurich, cls.food)

    def get_json(self, url, status=200):
        response = self.client.get(url)
        self.assertEqual(response.status_code, status)
        self.assertEqual(response["Content-Type"], "application/json")
        return response.json()

    def test_list_shape(self):
        data = self.get_json("/api/articles/")

        self.assertEqual(set(data), {"count", "page", "num_pages", "results"})
        self.assertEqual((data["count"], data["page"], data["num_pages"]), (24, 1, 3))
        self.assertEqual(len(data["results"]), 10)
        self.assertEqual(
            data["results"][0],
            {
                "id": self.cafe.pk,
                "title": "Café culture",
                "slug": "cafe-culture",
                "author": "ana",
                "tags": ["food", "zurich"],
                "published_at": "2024-03-31T12:00:00+00:00",
                "view_count": 0,
                "url": "/articles/cafe-culture/",
                "excerpt": "A NAÏVE look at coffee in Zürich and 東京.",
            },
        )

    def test_excerpt_is_the_first_200_characters_and_body_is_left_out(self):
        item = self.get_json("/api/articles/?page=2")["results"][0]

        self.assertEqual(item["excerpt"], "x" * 200)
        self.assertNotIn("body", item)

    def test_page_and_page_size(self):
        data = self.get_json("/api/articles/?page=3&page_size=5")

        self.assertEqual((data["page"], data["num_pages"]), (3, 5))
        self.assertEqual(
            [r["title"] for r in data["results"]],
            ["Article 14", "Article 13", "Article 12", "Article 11", "Article 10"],
        )

    def test_page_size_is_capped_at_fifty(self):
        for n in range(100, 130):
            make_article(self.author, n)
        data = self.get_json("/api/articles/?page_size=500")

        self.assertEqual(len(data["results"]), 50)
        self.assertEqual(data["num_pages"], 2)

    def test_bad_page_size_is_rejected(self):
        for value in ("0", "-1", "ten"):
            with self.subTest(page_size=value):
                data = self.get_json(f"/api/articles/?page_size={value}", status=400)
                self.assertIn("page_size", data["error"])

    def test_out_of_range_page_is_a_json_404(self):
        self.assertEqual(self.get_json("/api/articles/?page=4", status=404), {"error": "page out of range"})
        self.assertEqual(self.get_json("/api/articles/?page=0", status=404), {"error": "page out of range"})

    def test_invalid_page_is_a_json_404(self):
        self.assertEqual(self.get_json("/api/articles/?page=one", status=404), {"error": "invalid page"})

    def test_search_matches_title_and_body_ignoring_case(self):
        for query in ("café", "CAFÉ", "naïve", "zürich", "ZÜRICH", "東京", "Coffee"):
            with self.subTest(q=query):
                data = self.get_json(f"/api/articles/?q={query}")
                self.assertEqual([r["slug"] for r in data["results"]], ["cafe-culture"])

    def test_search_without_matches_is_an_empty_first_page(self):
        self.assertEqual(
            self.get_json("/api/articles/?q=nothing-like-this"),
            {"count": 0, "page": 1, "num_pages": 1, "results": []},
        )

    def test_other_methods_are_not_allowed(self):
        self.assertEqual(self.client.put("/api/articles/").status_code, 405)
        self.assertEqual(self.client.delete("/api/articles/1/").status_code, 405)


class ApiDetailTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.article = make_article(User.objects.create(username="ana"), 1, body="Full body")

    def test_detail_includes_the_body(self):
        response = self.client.get(f"/api/articles/{self.article.pk}/")

        self.assertEqual(response.status_code, 200)
        data = response.json()
        self.assertEqual(data["body"], "Full body")
        self.assertNotIn("excerpt", data)
        self.assertEqual(data["id"], self.article.pk)
        self.assertEqual(data["url"], "/articles/article-1/")

    def test_missing_article_is_a_json_404(self):
        response = self.client.get("/api/articles/999999/")

        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"error": "not found"})


class ApiCreateTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = User.objects.create(username="writer")
        Tag.objects.create(name="Python", slug="python")

    def setUp(self):
        self.client.force_login(self.user)

    def post_json(self, payload, client=None, **extra):
        body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
        return (client or self.client).post(
            "/api/articles/", body, content_type="application/json", **extra
        )

    def test_create_returns_201_with_location(self):
        with self.assertLogs("articles.api", "INFO") as logs:
            response = self.post_json(
                {"title": "Hello Zürich", "body": "First post.", "tags": ["python", "Travel Notes"]}
            )

        self.assertEqual(response.status_code, 201)
        article = Article.objects.get()
        self.assertEqual(response["Location"], f"/api/articles/{article.pk}/")
        data = response.json()
        self.assertEqual(data["title"], "Hello Zürich")
        self.assertEqual(data["slug"], "hello-zurich")
        self.assertEqual(data["author"], "writer")
        self.assertEqual(data["body"], "First post.")
        self.assertEqual(data["tags"], ["python", "travel-notes"])
        self.assertEqual(Tag.objects.count(), 2)
        self.assertEqual(Tag.objects.get(slug="travel-notes").name, "Travel Notes")
        self.assertEqual(self.client.get(response["Location"]).json()["id"], article.pk)
        self.assertEqual(logs.output, [f"INFO:articles.api:article {article.pk} created by writer"])

    def test_slugs_are_made_unique(self):
        with self.assertLogs("articles.api", "INFO"):
            slugs = [self.post_json({"title": "Same title", "body": "b"}).json()["slug"] for _ in range(3)]
        self.assertEqual(slugs, ["same-title", "same-title-2", "same-title-3"])

    def test_title_without_latin_letters_still_gets_a_slug(self):
        with self.assertLogs("articles.api", "INFO"):
            response = self.post_json({"title": "東京", "body": "b"})
        self.assertEqual(response.json()["slug"], "article")

    def test_invalid_json(self):
        response = self.post_json("{not json")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"error": "invalid JSON"})

    def test_json_must_be_an_object(self):
        response = self.post_json(["title", "body"])
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"error": "expected a JSON object"})

    def test_missing_or_blank_fields(self):
        cases = [
            ({}, ["title", "body"]),
            ({"title": "  ", "body": "text"}, ["title"]),
            ({"title": "T", "body": 5}, ["body"]),
        ]
        for payload, fields in cases:
            with self.subTest(payload=payload):
                response = self.post_json(payload)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json(), {"error": "missing fields", "fields": fields})
        self.assertFalse(Article.objects.exists())

    def test_bad_tags(self):
        response = self.post_json({"title": "T", "body": "b", "tags": "python"})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["fields"], ["tags"])

    def test_anonymous_users_get_a_json_403(self):
        self.client.logout()
        response = self.post_json({"title": "T", "body": "b"})

        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json(), {"error": "authentication required"})
        self.assertFalse(Article.objects.exists())

    def test_csrf_token_is_required(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.user)

        response = self.post_json({"title": "T", "body": "b"}, client=client)

        self.assertEqual(response.status_code, 403)
        self.assertIn("CSRF", response.content.decode())
        self.assertFalse(Article.objects.exists())

    def test_csrf_token_from_a_page_is_accepted(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.user)
        client.get("/accounts/login/")  # any page with a form sets the cookie
        token = client.cookies["csrftoken"].value

        with self.assertLogs("articles.api", "INFO"):
            response = self.post_json({"title": "T", "body": "b"}, client=client, HTTP_X_CSRFTOKEN=token)

        self.assertEqual(response.status_code, 201)


# The default hasher is deliberately slow; these tests hash on every seed run.
@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class SeedCommandTests(TestCase):
    def seed(self, **options):
        call_command("seed", stdout=io.StringIO(), **options)

    def snapshot(self):
        return {
            "users": list(User.objects.order_by("id").values()),
            "tags": list(Tag.objects.order_by("id").values()),
            "articles": list(Article.objects.order_by("id").values()),
            "links": list(Article.tags.through.objects.order_by("id").values()),
            "comments": list(Comment.objects.order_by("id").values()),
        }

    def test_same_seed_gives_identical_rows(self):
        self.seed(articles=12, seed=7)
        first = self.snapshot()
        self.seed(articles=12, seed=7)

        self.assertEqual(self.snapshot(), first)
        self.assertEqual([a["id"] for a in first["articles"]], list(range(1, 13)))

    def test_different_seed_gives_different_rows(self):
        self.seed(articles=12, seed=7)
        first = self.snapshot()
        self.seed(articles=12, seed=8)

        self.assertNotEqual(self.snapshot()["articles"], first["articles"])

    def test_defaults_and_published_dates_do_not_depend_on_the_clock(self):
        self.seed()
        self.assertEqual(Article.objects.count(), 50)
        self.assertLess(Article.objects.latest("published_at").published_at.year, 2025)

    def test_seed_replaces_existing_data(self):
        stranger = User.objects.create(username="stranger")
        make_article(stranger, 1, slug="old")

        self.seed(articles=5, seed=1)

        self.assertFalse(User.objects.filter(username="stranger").exists())
        self.assertFalse(Article.objects.filter(slug="old").exists())
        self.assertEqual(Article.objects.count(), 5)

    def test_editor_can_log_in_and_is_superuser(self):
        self.seed(articles=3, seed=1)

        editor = User.objects.get(username="editor")
        self.assertTrue(editor.is_staff and editor.is_superuser)
        self.assertTrue(self.client.login(username="editor", password="editor-password"))
        self.assertTrue(self.client.login(username="alice", password="alice-password"))

    def test_new_rows_continue_after_the_seeded_ids(self):
        self.seed(articles=30, seed=1)
        self.seed(articles=12, seed=1)
        self.client.force_login(User.objects.get(username="editor"))

        with self.assertLogs("articles.api", "INFO"):
            response = self.client.post(
                "/api/articles/", {"title": "Fresh", "body": "b"}, content_type="application/json"
            )

        self.assertEqual(response.json()["id"], 13)

    def test_seeded_text_includes_non_ascii_words(self):
        self.seed(articles=20, seed=42)
        for query in ("café", "東京", "Zürich", "naïve"):
            with self.subTest(q=query):
                self.assertGreater(self.client.get("/api/articles/", {"q": query}).json()["count"], 0)



class AdminTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = User.objects.create(username="boss", is_staff=True, is_superuser=True)
        article = make_article(cls.admin, 1, title="Zürich café notes")
        Comment.objects.create(article=article, author_name="Zoë", body="Hi")

    def setUp(self):
        self.client.force_login(self.admin)

    def test_changelists_and_forms_render(self):
        for url in (
            "/admin/articles/article/",
            "/admin/articles/article/?q=café",
            "/admin/articles/article/add/",
            "/admin/articles/tag/",
            "/admin/articles/comment/",
            "/admin/media/upload/",
        ):
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 200)

    def test_article_search(self):
        self.assertContains(self.client.get("/admin/articles/article/?q=café"), "Zürich café notes")
        self.assertNotContains(self.client.get("/admin/articles/article/?q=pasta"), "Zürich café notes")

    def test_admin_requires_staff(self):
        self.client.logout()
        response = self.client.get("/admin/articles/article/")
        self.assertRedirects(response, "/admin/login/?next=/admin/articles/article/")
