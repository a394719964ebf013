"""Tests for uploads, file serving and signed object-storage URLs."""
import base64
import hashlib
import hmac
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, SimpleTestCase, TestCase, override_settings

from .models import Upload


class TempMediaRootMixin:
    """Points MEDIA_ROOT at a fresh directory inside a scratch parent."""

    def setUp(self):
        super().setUp()
        self.scratch = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.scratch)
        self.media_root = self.scratch / "media"
        self.media_root.mkdir()
        settings_override = override_settings(MEDIA_ROOT=self.media_root)
        settings_override.enable()
        self.addCleanup(settings_override.disable)


class UploadTests(TempMediaRootMixin, TestCase):
    def upload(self, name="notes.txt", content=b"hello\n", content_type="text/plain", client=None):
        data = {"file": SimpleUploadedFile(name, content, content_type=content_type)}
        return (client or self.client).post("/media/upload/", data)

    def test_form_page(self):
        response = self.client.get("/media/upload/")

        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "media/upload.html")
        self.assertContains(response, 'enctype="multipart/form-data"')
        self.assertContains(response, 'name="csrfmiddlewaretoken"')
        self.assertContains(response, 'type="file" name="file"')

    def test_upload_round_trip(self):
        with self.assertLogs("media.views", "INFO"):
            response = self.upload(content=b"hello, world\n")

        self.assertEqual(response.status_code, 201)
        data = response.json()
        self.assertEqual(
            data,
            {
                "id": Upload.objects.get().pk,
                "name": "uploads/notes.txt",
                "original_name": "notes.txt",
                "size": 13,
                "content_type": "text/plain",
                "url": "/media/files/uploads/notes.txt",
            },
        )
        self.assertEqual(response["Location"], data["url"])
        self.assertEqual((self.media_root / "uploads" / "notes.txt").read_bytes(), b"hello, world\n")

        served = self.client.get(data["url"])
        self.assertEqual(served.status_code, 200)
        self.assertEqual(b"".join(served.streaming_content), b"hello, world\n")
        self.assertTrue(served["Content-Type"].startswith("text/plain"))

    def test_same_name_twice_keeps_both_files(self):
        with self.assertLogs("media.views", "INFO"):
            first = self.upload(content=b"one").json()
            second = self.upload(content=b"two").json()

        self.assertNotEqual(first["name"], second["name"])
        self.assertEqual(b"".join(self.client.get(first["url"]).streaming_content), b"one")
        self.assertEqual(b"".join(self.client.get(second["url"]).streaming_content), b"two")

    def test_non_ascii_and_unsafe_names(self):
        with self.assertLogs("media.views", "INFO"):
            data = self.upload(name="東京 café.txt", content=b"x").json()

        self.assertEqual(data["original_name"], "東京 café.txt")
        self.assertEqual(data["name"], "uploads/東京_café.txt")
        self.assertEqual(data["url"], "/media/files/uploads/%E6%9D%B1%E4%BA%AC_caf%C3%A9.txt")
        self.assertEqual(self.client.get(data["url"]).status_code, 200)

    def test_missing_file_is_rejected(self):
        response = self.client.post("/media/upload/", {})

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"error": "missing fields", "fields": ["file"]})
        self.assertFalse(Upload.objects.exists())

    def test_upload_needs_a_csrf_token(self):
        response = self.upload(client=Client(enforce_csrf_checks=True))

        self.assertEqual(response.status_code, 403)
        self.assertFalse(any(self.media_root.iterdir()))

    def test_recent_uploads_are_listed(self):
        with self.assertLogs("media.views", "INFO"):
            self.upload(name="report.pdf", content=b"%PDF", content_type="application/pdf")

        self.assertContains(self.client.get("/media/upload/"), "report.pdf")


class ServeFileTests(TempMediaRootMixin, SimpleTestCase):
    def setUp(self):
        super().setUp()
        (self.media_root / "docs").mkdir()
        (self.media_root / "docs" / "a.txt").write_text("inside")
        (self.scratch / "secret.txt").write_text("outside")

    def test_serves_files_under_media_root(self):
        response = self.client.get("/media/files/docs/a.txt")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(b"".join(response.streaming_content), b"inside")

    def test_missing_files_and_directories_are_not_found(self):
        for url in ("/media/files/docs/missing.txt", "/media/files/docs", "/media/files/docs/"):
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 404)

    def test_cannot_escape_media_root(self):
        for url in (
            "/media/files/../secret.txt",
            "/media/files/docs/../../secret.txt",
            "/media/files/%2e%2e/secret.txt",
            f"/media/files/{self.scratch}/secret.txt",
        ):
            with self.subTest(url=url):
                response = self.client.get(url)
                self.assertEqual(response.status_code, 404)
                self.assertNotIn(b"outside", response.content)


OSS = {
    "OSS_ACCESS_KEY_ID": "test-id",
    "OSS_ACCESS_KEY_SECRET": "test-secret",
    "OSS_ENDPOINT": "https://oss-cn-hangzhou.aliyuncs.com",
    "OSS_BUCKET": "legacy-bucket",
}
COS = {
    "COS_SECRET_ID": "test-sid",
    "COS_SECRET_KEY": "test-skey",
    "COS_REGION": "ap-guangzhou",
    "COS_BUCKET": "legacy-1250000000",
}


def refuse_network(*args, **kwargs):
    raise AssertionError("signing must not touch the network")


@override_settings(**OSS, **COS)
@mock.patch("socket.getaddrinfo", refuse_network)
@mock.patch("socket.socket.connect", refuse_network)
class SignedUrlTests(SimpleTestCase):
    def get(self, key, **params):
        return self.client.get(f"/api/media/{key}/signed-url/", params)

    def test_oss_url_is_signed_for_the_key(self):
        before = int(time.time())
        response = self.get("some/key.txt", provider="oss")

        self.assertEqual(response.status_code, 200)
        data = response.json()
        self.assertEqual(
            {k: data[k] for k in ("provider", "key", "expires")},
            {"provider": "oss", "key": "some/key.txt", "expires": 3600},
        )
        url = urlsplit(data["url"])
        query = parse_qs(url.query)
        self.assertEqual(url.scheme, "https")
        self.assertEqual(url.netloc, "legacy-bucket.oss-cn-hangzhou.aliyuncs.com")
        self.assertEqual(url.path, "/some/key.txt")
        self.assertEqual(query["OSSAccessKeyId"], ["test-id"])
        expires_at = int(query["Expires"][0])
        self.assertTrue(before + 3600 <= expires_at <= int(time.time()) + 3600)
        # OSS signature v1: HMAC-SHA1 over verb, expiry and resource.
        string_to_sign = f"GET\n\n\n{expires_at}\n/legacy-bucket/some/key.txt"
        expected = hmac.new(b"test-secret", string_to_sign.encode(), hashlib.sha1).digest()
        self.assertEqual(query["Signature"], [base64.b64encode(expected).decode()])

    def test_cos_url_is_signed_for_the_key(self):
        before = int(time.time())
        response = self.get("some/key.txt", provider="cos", expires="60")

        self.assertEqual(response.status_code, 200)
        data = response.json()
        self.assertEqual((data["provider"], data["key"], data["expires"]), ("cos", "some/key.txt", 60))
        url = urlsplit(data["url"])
        query = parse_qs(url.query)
        self.assertEqual(url.netloc, "legacy-1250000000.cos.ap-guangzhou.myqcloud.com")
        self.assertEqual(url.path, "/some/key.txt")
        self.assertEqual(query["q-sign-algorithm"], ["sha1"])
        self.assertEqual(query["q-ak"], ["test-sid"])
        self.assertEqual(query["q-header-list"], ["host"])
        key_time = query["q-key-time"][0]
        start, end = map(int, key_time.split(";"))
        self.assertTrue(start <= before and before + 60 <= end <= int(time.time()) + 60)
        # COS signature: a key derived from the key time signs a digest of the request.
        sign_key = hmac.new(b"test-skey", key_time.encode(), hashlib.sha1).hexdigest()
        http_string = f"get\n/some/key.txt\n\nhost={url.netloc}\n"
        string_to_sign = f"sha1\n{key_time}\n{hashlib.sha1(http_string.encode()).hexdigest()}\n"
        expected = hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()
        self.assertEqual(query["q-signature"], [expected])

    def test_non_ascii_keys_are_percent_encoded(self):
        for provider in ("oss", "cos"):
            with self.subTest(provider=provider):
                data = self.get("photos/東京 café.jpg", provider=provider).json()
                self.assertEqual(data["key"], "photos/東京 café.jpg")
                path = urlsplit(data["url"]).path
                self.assertTrue(path.isascii())
                self.assertEqual(unquote(path), "/photos/東京 café.jpg")

    def test_expires_bounds(self):
        self.assertEqual(self.get("k", provider="oss", expires="604800").json()["expires"], 604800)
        for value in ("0", "-5", "604801", "soon"):
            with self.subTest(expires=value):
                response = self.get("k", provider="cos", expires=value)
                self.assertEqual(response.status_code, 400)
                self.assertIn("expires", response.json()["error"])

    def test_provider_is_required_and_checked(self):
        for params in ({}, {"provider": "s3"}, {"provider": "OSS"}):
            with self.subTest(params=params):
                response = self.get("k", **params)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json(), {"error": "provider must be one of: oss, cos"})
