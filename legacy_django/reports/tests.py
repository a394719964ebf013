"""Tests for the streamed CSV export."""
import csv
import io
from datetime import datetime, timezone

from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from django.test import TestCase

from articles.models import Article, Tag


class ArticlesCsvTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        ana = get_user_model().objects.create(username="ana")
        food = Tag.objects.create(name="Food", slug="food")
        zurich = Tag.objects.create(name="Zürich", slug="zurich")
        cls.first = Article.objects.create(
            title='Café, "naïve" notes',
            slug="cafe-naive-notes",
            body="b",
            author=ana,
            published_at=datetime(2024, 5, 1, 8, 30, tzinfo=timezone.utc),
            view_count=7,
        )
        cls.first.tags.add(zurich, food)
        cls.second = Article.objects.create(
            title="東京",
            slug="tokyo",
            body="b",
            author=ana,
            published_at=datetime(2024, 6, 1, tzinfo=timezone.utc),
        )

    def fetch(self):
        response = self.client.get("/reports/articles.csv")
        self.assertEqual(response.status_code, 200)
        return response

    def rows(self, response):
        text = b"".join(response.streaming_content).decode("utf-8")
        return list(csv.reader(io.StringIO(text)))

    def test_is_a_streamed_attachment(self):
        response = self.fetch()

        self.assertIsInstance(response, StreamingHttpResponse)
        self.assertTrue(response.streaming)
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertEqual(response["Content-Disposition"], 'attachment; filename="articles.csv"')

    def test_yields_one_chunk_per_row(self):
        chunks = list(self.fetch().streaming_content)

        self.assertEqual(len(chunks), 3)
        self.assertEqual(chunks[0], b"id,title,slug,author,published_at,view_count,tags\r\n")

    def test_rows(self):
        self.assertEqual(
            self.rows(self.fetch()),
            [
                ["id", "title", "slug", "author", "published_at", "view_count", "tags"],
                [str(self.first.pk), 'Café, "naïve" notes', "cafe-naive-notes", "ana",
                 "2024-05-01T08:30:00+00:00", "7", "food;zurich"],
                [str(self.second.pk), "東京", "tokyo", "ana", "2024-06-01T00:00:00+00:00", "0", ""],
            ],
        )

    def test_queries_do_not_grow_with_the_article_count(self):
        response = self.fetch()
        # Streaming runs the queries lazily: one for articles, one for all their tags.
        with self.assertNumQueries(2):
            self.rows(response)

    def test_empty_table_gives_just_the_header(self):
        Article.objects.all().delete()
        self.assertEqual(len(self.rows(self.fetch())), 1)

    def test_post_is_not_allowed(self):
        self.assertEqual(self.client.post("/reports/articles.csv").status_code, 405)
