"""Case-insensitive article search that also folds non-ASCII letters.

SQLite's LIKE and LOWER() only fold ASCII, so "ZÜRICH" would not find
"Zürich". Comparing Lower() of both sides works on PostgreSQL as is; on
SQLite we swap LOWER() for Python's Unicode-aware str.lower().
"""
from django.db.models import Q
from django.db.models.functions import Lower


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def register_sqlite_lower(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("LOWER", 1, _lower, deterministic=True)


def search_articles(queryset, query):
    query = query.strip().lower()
    if not query:
        return queryset
    return queryset.alias(title_lower=Lower("title"), body_lower=Lower("body")).filter(
        Q(title_lower__contains=query) | Q(body_lower__contains=query)
    )
