"""Fill the database with deterministic demo data.

    python manage.py seed --articles 50 --seed 42

Wipes every user, article, tag and comment, then recreates them from
``random.Random(seed)``: the same arguments always give the same rows,
primary keys included. Seeded users, all with password "<username>-password":

    editor  (staff and superuser: use it for /admin/ and POST /api/articles/)
    alice, bob, chen  (plain users)
"""
import hashlib
import random
from datetime import datetime, timedelta, timezone

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils.text import slugify

from articles.models import Article, Comment, Tag

USERS = [
    # username, first name, staff and superuser
    ("editor", "Edith", True),
    ("alice", "Alice", False),
    ("bob", "Bob", False),
    ("chen", "Chen", False),
]

TAGS = [
    "Python", "Django", "Rust", "Databases", "Search",
    "Travel", "Food", "Cloud", "Testing", "Zürich",
]

# Non-ASCII words are mixed in on purpose, so searching for "café" or "東京"
# exercises Unicode handling end to end.
ADJECTIVES = [
    "quiet", "practical", "naïve", "curious", "robust", "gentle", "rapid",
    "hidden", "modern", "legacy", "simple", "careful", "brave", "tidy",
]
NOUNS = [
    "café", "server", "pipeline", "garden", "database", "river", "Zürich",
    "東京", "compiler", "library", "notebook", "bridge", "cache", "journey",
    "template", "request", "museum", "harbour",
]
VERBS = [
    "explains", "improves", "visits", "measures", "replaces", "describes",
    "follows", "connects", "rewrites", "serves", "tests", "remembers",
]
COMMENTS = [
    "Thanks for writing this up.",
    "I tried this in Zürich and it worked.",
    "Could you expand on the second part?",
    "Great read over a café crème.",
    "This saved me an afternoon.",
    "東京 has the same problem, interesting.",
    "A naïve question: does it scale?",
]

EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


def sentence(rng):
    words = [
        rng.choice(ADJECTIVES),
        rng.choice(NOUNS),
        rng.choice(VERBS),
        "the",
        rng.choice(ADJECTIVES),
        rng.choice(NOUNS),
    ]
    if rng.random() < 0.5:
        words += ["with", "a", rng.choice(NOUNS)]
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def title(rng):
    words = [rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(["notes", "guide", "story", "tips"])]
    return " ".join(word[0].upper() + word[1:] for word in words)


def body(rng):
    paragraphs = []
    for _ in range(rng.randint(2, 4)):
        paragraphs.append(" ".join(sentence(rng) for _ in range(rng.randint(3, 6))))
    return "\n\n".join(paragraphs)


class Command(BaseCommand):
    help = "Replace users, articles, tags and comments with deterministic demo data."

    def add_arguments(self, parser):
        parser.add_argument("--articles", type=int, default=50, help="number of articles (default 50)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")

    def handle(self, *args, articles, seed, **options):
        if articles < 0:
            raise CommandError("--articles must not be negative")
        rng = random.Random(seed)
        User = get_user_model()
        TagLink = Article.tags.through

        with transaction.atomic():
            Comment.objects.all().delete()
            Article.objects.all().delete()
            Tag.objects.all().delete()
            User.objects.all().delete()

            # Explicit ids everywhere, so a re-run gives the same primary keys
            # whatever the database's sequences remember.
            joined = EPOCH + timedelta(days=seed % 365)
            users = User.objects.bulk_create(
                User(
                    id=index,
                    username=username,
                    first_name=first_name,
                    email=f"{username}@example.com",
                    # A fixed salt keeps the rows byte-identical between runs.
                    password=make_password(f"{username}-password", salt=self.salt(seed, username)),
                    is_staff=staff,
                    is_superuser=staff,
                    date_joined=joined,
                )
                for index, (username, first_name, staff) in enumerate(USERS, start=1)
            )
            tags = Tag.objects.bulk_create(
                Tag(id=index, name=name, slug=slugify(name))
                for index, name in enumerate(TAGS, start=1)
            )

            published = joined
            new_articles, links, comments, used_slugs = [], [], [], set()
            for article_id in range(1, articles + 1):
                published += timedelta(hours=rng.randint(6, 72), minutes=rng.randint(0, 59))
                article_title = title(rng)
                slug = base = slugify(article_title)
                suffix = 2
                while slug in used_slugs:
                    slug, suffix = f"{base}-{suffix}", suffix + 1
                used_slugs.add(slug)
                new_articles.append(
                    Article(
                        id=article_id,
                        title=article_title,
                        slug=slug,
                        body=body(rng),
                        author=rng.choice(users),
                        published_at=published,
                        view_count=rng.randint(0, 500),
                    )
                )
                for tag in sorted(rng.sample(tags, rng.randint(1, 3)), key=lambda t: t.id):
                    links.append(TagLink(id=len(links) + 1, article_id=article_id, tag_id=tag.id))
                for minute in range(rng.randint(0, 3)):
                    comments.append(
                        Comment(
                            id=len(comments) + 1,
                            article_id=article_id,
                            author_name=rng.choice(["Ana", "Ben", "Chloé", "Dmitri", "Emi"]),
                            body=rng.choice(COMMENTS),
                            created_at=published + timedelta(hours=1, minutes=minute),
                        )
                    )

            Article.objects.bulk_create(new_articles)
            TagLink.objects.bulk_create(links)
            Comment.objects.bulk_create(comments)
            self.reset_sequences([User, Tag, Article, TagLink, Comment])

        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {len(users)} users, {len(tags)} tags, {len(new_articles)} articles "
                f"and {len(comments)} comments (seed {seed}). Log in as editor / editor-password."
            )
        )

    @staticmethod
    def salt(seed, username):
        return hashlib.sha256(f"legacy-seed:{seed}:{username}".encode()).hexdigest()[:32]

    @staticmethod
    def reset_sequences(models):
        """Point id sequences just past the seeded rows, so later inserts are predictable too."""
        if connection.vendor == "sqlite":
            # SQLite's AUTOINCREMENT keeps its high-water mark across deletes.
            tables = [model._meta.db_table for model in models]
            placeholders = ", ".join(["%s"] * len(tables))
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
                )
                if cursor.fetchone():
                    cursor.execute(f"DELETE FROM sqlite_sequence WHERE name IN ({placeholders})", tables)
                    for table in tables:
                        cursor.execute(
                            "INSERT INTO sqlite_sequence (name, seq) "
                            f"SELECT %s, COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}",
                            [table],
                        )
            return
        statements = connection.ops.sequence_reset_sql(no_style(), models)
        if statements:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
