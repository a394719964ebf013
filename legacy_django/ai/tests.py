"""Tests for legacy.ai and the endpoints built on it."""
import json
from datetime import datetime, timezone

from django.contrib.auth import get_user_model
from django.test import Client, SimpleTestCase, TestCase

from articles.models import Article
from legacy import ai

TEXT = (
    "Rust makes servers fast. "
    "Django makes web pages easy. "
    "A Rust server can embed Django and serve Django pages fast. "
    "The weather was pleasant today."
)


class SplitSentencesTests(SimpleTestCase):
    def test_splits_on_latin_and_cjk_punctuation(self):
        self.assertEqual(
            ai.split_sentences("Pi is 3.14 or so. Really?  Yes! 東京は大きい。とても"),
            ["Pi is 3.14 or so.", "Really?", "Yes!", "東京は大きい。", "とても"],
        )


class SummarizeTests(SimpleTestCase):
    def test_picks_the_most_representative_sentences_in_original_order(self):
        self.assertEqual(
            ai.summarize(TEXT, max_sentences=2),
            "Django makes web pages easy. A Rust server can embed Django and serve Django pages fast.",
        )

    def test_single_sentence(self):
        self.assertEqual(
            ai.summarize(TEXT, max_sentences=1),
            "A Rust server can embed Django and serve Django pages fast.",
        )

    def test_short_texts_come_back_whole(self):
        self.assertEqual(ai.summarize("One. Two.", max_sentences=3), "One. Two.")

    def test_is_deterministic(self):
        self.assertEqual(len({ai.summarize(TEXT, 2) for _ in range(5)}), 1)

    def test_rejects_a_non_positive_length(self):
        with self.assertRaises(ValueError):
            ai.summarize(TEXT, max_sentences=0)


class KeywordsTests(SimpleTestCase):
    def test_ranks_by_frequency_and_skips_stopwords(self):
        self.assertEqual(ai.keywords(TEXT, n=3), ["django", "fast", "makes"])

    def test_ties_are_alphabetical(self):
        self.assertEqual(ai.keywords("zebra apple mango", n=2), ["apple", "mango"])

    def test_non_ascii_words_and_numbers(self):
        self.assertEqual(ai.keywords("Café café CAFÉ in Zürich, 2024 and 東京 東京"), ["café", "東京", "zürich"])

    def test_empty_text(self):
        self.assertEqual(ai.keywords("the and of"), [])


class RelatedArticlesTests(SimpleTestCase):
    def test_ranks_by_similarity_and_drops_unrelated(self):
        ranked = ai.related_articles(
            "rust server performance",
            [
                ("cooking", "pasta recipe with tomato"),
                ("close", "rust server performance tuning"),
                ("partial", "a rust compiler story"),
            ],
        )
        self.assertEqual([key for key, _ in ranked], ["close", "partial"])
        self.assertGreater(ranked[0][1], ranked[1][1])

    def test_identical_text_scores_one(self):
        [(key, score)] = ai.related_articles("café in Zürich", [(7, "Café in Zürich")])
        self.assertEqual(key, 7)
        self.assertAlmostEqual(score, 1.0)

    def test_limits_and_edge_cases(self):
        candidates = [(i, "shared words here") for i in range(10)]
        ranked = ai.related_articles("shared words", candidates, n=3)

        self.assertEqual([key for key, _ in ranked], [0, 1, 2])  # ties keep input order
        self.assertEqual(ai.related_articles("anything", []), [])
        self.assertEqual(ai.related_articles("anything", candidates, n=0), [])


class SummarizeEndpointTests(SimpleTestCase):
    def post(self, payload, client=None):
        body = payload if isinstance(payload, str) else json.dumps(payload)
        return (client or self.client).post("/api/summarize/", body, content_type="application/json")

    def test_summarizes(self):
        response = self.post({"text": TEXT, "max_sentences": 2})

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.json(),
            {
                "summary": ai.summarize(TEXT, 2),
                "keywords": ["django", "fast", "makes", "pages", "rust"],
                "sentences": 2,
            },
        )

    def test_defaults_to_three_sentences(self):
        self.assertEqual(self.post({"text": TEXT}).json()["sentences"], 3)

    def test_sentences_counts_what_the_summary_holds(self):
        self.assertEqual(self.post({"text": "Only one sentence here", "max_sentences": 5}).json()["sentences"], 1)

    def test_invalid_json(self):
        response = self.post("{oops")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"error": "invalid JSON"})

    def test_missing_or_empty_text(self):
        for payload in ({}, {"text": ""}, {"text": "   "}, {"text": 42}):
            with self.subTest(payload=payload):
                response = self.post(payload)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json(), {"error": "missing fields", "fields": ["text"]})

    def test_bad_max_sentences(self):
        for value in (0, 11, "3", True, 2.5):
            with self.subTest(max_sentences=value):
                response = self.post({"text": TEXT, "max_sentences": value})
                self.assertEqual(response.status_code, 400)
                self.assertIn("max_sentences", response.json()["error"])

    def test_get_is_not_allowed(self):
        self.assertEqual(self.client.get("/api/summarize/").status_code, 405)

    def test_no_csrf_token_needed(self):
        response = self.post({"text": TEXT}, client=Client(enforce_csrf_checks=True))
        self.assertEqual(response.status_code, 200)


class RelatedEndpointTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        author = get_user_model().objects.create(username="ana")
        published = datetime(2024, 1, 1, tzinfo=timezone.utc)

        def article(slug, title, body):
            return Article.objects.create(
                slug=slug, title=title, body=body, author=author, published_at=published
            )

        cls.target = article("rust-servers", "Rust servers", "Embedding Django in a Rust server.")
        cls.close = article("rust-django", "Rust and Django", "A Rust server that embeds Django.")
        cls.partial = article("rust-compilers", "Rust compilers", "How the compiler works.")
        cls.unrelated = article("pasta", "Pasta", "Tomato sauce recipe.")
        for n in range(6):
            article(f"filler-{n}", f"Server note {n}", "server")

    def test_lists_related_articles_best_first(self):
        response = self.client.get(f"/api/articles/{self.target.pk}/related/")

        self.assertEqual(response.status_code, 200)
        data = response.json()
        self.assertEqual(data["article"], self.target.pk)
        related = data["related"]
        self.assertEqual(len(related), 5)
        self.assertEqual(
            related[0],
            {"id": self.close.pk, "title": "Rust and Django", "slug": "rust-django", "score": related[0]["score"]},
        )
        ids = [item["id"] for item in related]
        self.assertNotIn(self.target.pk, ids)
        self.assertNotIn(self.unrelated.pk, ids)
        scores = [item["score"] for item in related]
        self.assertEqual(scores, sorted(scores, reverse=True))
        for score in scores:
            self.assertEqual(score, round(score, 4))
            self.assertTrue(0 < score <= 1)

    def test_missing_article_is_a_json_404(self):
        response = self.client.get("/api/articles/999999/related/")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"error": "not found"})
