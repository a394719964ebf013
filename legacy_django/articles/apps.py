from django.apps import AppConfig


class ArticlesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "articles"

    def ready(self):
        from django.db.backends.signals import connection_created

        from .search import register_sqlite_lower

        connection_created.connect(register_sqlite_lower, dispatch_uid="articles.sqlite_lower")
