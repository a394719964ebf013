"""Project-level tests: health check, error pages, settings and logging."""
import json
import logging
import os
import subprocess
import sys
import tempfile
from unittest import mock

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import OperationalError
from django.template import loader
from django.test import Client, SimpleTestCase, TestCase, override_settings
from django.urls import path

from . import urls as project_urls


def boom(request):
    raise RuntimeError("kaboom")


urlpatterns = project_urls.urlpatterns + [path("boom/", boom)]


class HealthzTests(TestCase):
    def test_reports_ok_after_querying_the_database(self):
        with self.assertNumQueries(1):
            response = self.client.get("/healthz")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok", "db": True})
        self.assertIn("no-cache", response["Cache-Control"])

    def test_reports_503_when_the_database_fails(self):
        with mock.patch("legacy.views.connection") as connection:
            connection.cursor.side_effect = OperationalError("database is locked")
            with self.assertLogs("legacy.views", "ERROR"), self.assertLogs("django.request", "ERROR"):
                response = self.client.get("/healthz")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json(), {"status": "error", "db": False})

    def test_has_no_trailing_slash(self):
        self.assertEqual(self.client.get("/healthz/").status_code, 404)


class ErrorPageTests(TestCase):
    def test_404_uses_the_site_template(self):
        response = self.client.get("/no/such/page/")

        self.assertEqual(response.status_code, 404)
        self.assertTemplateUsed(response, "404.html")
        self.assertTemplateUsed(response, "base.html")
        self.assertContains(response, "Page not found", status_code=404)
        self.assertContains(response, "/static/css/site.css", status_code=404)

    def test_500_template_renders_without_any_context(self):
        html = loader.get_template("500.html").render()

        self.assertIn("Server error", html)
        self.assertIn('href="/articles/"', html)

    @override_settings(ROOT_URLCONF="legacy.tests")
    def test_unhandled_errors_render_500_and_log_the_traceback(self):
        client = Client(raise_request_exception=False)
        with self.assertLogs("django.request", "ERROR") as logs:
            response = client.get("/boom/")

        self.assertEqual(response.status_code, 500)
        self.assertContains(response, "Server error", status_code=500)
        self.assertIn("RuntimeError: kaboom", logs.output[0])


class SettingsTests(SimpleTestCase):
    @staticmethod
    def clean_environ():
        prefixes = ("DJANGO_", "LEGACY_", "DATABASE_URL", "OSS_", "COS_")
        return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}

    def load_settings(self, **env):
        """Import the settings module in a fresh interpreter, configured only by ``env``."""
        script = (
            "import json, legacy.settings as s;"
            "db = s.DATABASES['default'];"
            "print(json.dumps({'engine': db['ENGINE'], 'name': str(db['NAME']),"
            " 'conn_max_age': db['CONN_MAX_AGE'], 'debug': s.DEBUG,"
            " 'hosts': s.ALLOWED_HOSTS, 'media': str(s.MEDIA_ROOT),"
            " 'static': str(s.STATIC_ROOT), 'oss_bucket': s.OSS_BUCKET}))"
        )
        output = subprocess.run(
            [sys.executable, "-c", script],
            cwd=settings.BASE_DIR,
            env={**self.clean_environ(), **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(output)

    def test_environment_overrides(self):
        scratch = self.enterContext(tempfile.TemporaryDirectory())
        loaded = self.load_settings(
            LEGACY_DB_PATH=f"{scratch}/db/test.sqlite3",
            LEGACY_MEDIA_ROOT=f"{scratch}/media",
            LEGACY_STATIC_ROOT=f"{scratch}/static",
            DJANGO_DEBUG="true",
            DJANGO_ALLOWED_HOSTS="example.com, api.example.com",
            OSS_BUCKET="other-bucket",
        )

        self.assertEqual(loaded["engine"], "django.db.backends.sqlite3")
        self.assertEqual(loaded["name"], f"{scratch}/db/test.sqlite3")
        self.assertTrue(os.path.isdir(f"{scratch}/db"))
        self.assertEqual(loaded["media"], f"{scratch}/media")
        self.assertEqual(loaded["static"], f"{scratch}/static")
        self.assertTrue(loaded["debug"])
        self.assertEqual(loaded["hosts"][-2:], ["example.com", "api.example.com"])
        self.assertEqual(loaded["oss_bucket"], "other-bucket")
        self.assertEqual(loaded["conn_max_age"], 60)

    def test_database_url_selects_postgresql(self):
        loaded = self.load_settings(DATABASE_URL="postgres://u:p@db.invalid:5432/legacy")

        self.assertEqual(loaded["engine"], "django.db.backends.postgresql")
        self.assertEqual(loaded["name"], "legacy")
        self.assertEqual(loaded["conn_max_age"], 60)

    def test_debug_is_off_by_default(self):
        self.assertFalse(self.load_settings()["debug"])

    def test_request_errors_go_to_stderr(self):
        handlers = logging.getLogger("django.request").handlers
        self.assertTrue(any(
            isinstance(h, logging.StreamHandler) and h.stream is sys.__stderr__ for h in handlers
        ))

    def test_stylesheet_is_found_by_staticfiles(self):
        self.assertIsNotNone(finders.find("css/site.css"))
