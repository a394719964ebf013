"""Tests for sign-in, sign-out and the profile page."""
from datetime import datetime, timezone

from django.contrib.auth import get_user_model
from django.test import Client, TestCase

from articles.models import Article

User = get_user_model()


class LoginTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = User.objects.create_user(username="ana", password="a-long-passphrase")

    def test_login_page_has_a_form_with_csrf_token(self):
        response = self.client.get("/accounts/login/")

        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "accounts/login.html")
        self.assertContains(response, 'name="username"')
        self.assertContains(response, 'name="csrfmiddlewaretoken"')

    def test_good_credentials_redirect_to_the_profile(self):
        response = self.client.post(
            "/accounts/login/", {"username": "ana", "password": "a-long-passphrase"}
        )

        self.assertRedirects(response, "/accounts/profile/")
        self.assertEqual(int(self.client.session["_auth_user_id"]), self.user.pk)

    def test_next_parameter_is_honoured(self):
        response = self.client.post(
            "/accounts/login/",
            {"username": "ana", "password": "a-long-passphrase", "next": "/articles/"},
        )
        self.assertRedirects(response, "/articles/")

    def test_bad_credentials_show_the_form_again(self):
        response = self.client.post("/accounts/login/", {"username": "ana", "password": "wrong"})

        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Please enter a correct username and password")
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_login_post_needs_a_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        response = client.post("/accounts/login/", {"username": "ana", "password": "a-long-passphrase"})
        self.assertEqual(response.status_code, 403)


class LogoutTests(TestCase):
    def setUp(self):
        self.client.force_login(User.objects.create(username="ana"))

    def test_logout_by_post_redirects_home(self):
        response = self.client.post("/accounts/logout/")

        self.assertRedirects(response, "/")
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_logout_by_get_is_not_allowed(self):
        response = self.client.get("/accounts/logout/")

        self.assertEqual(response.status_code, 405)
        self.assertIn("_auth_user_id", self.client.session)


class ProfileTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ana = User.objects.create(username="ana")
        bob = User.objects.create(username="bob")
        published = datetime(2024, 1, 1, tzinfo=timezone.utc)
        Article.objects.create(title="Ana's café", slug="anas-cafe", body="b", author=cls.ana, published_at=published)
        Article.objects.create(title="Bob's bridge", slug="bobs-bridge", body="b", author=bob, published_at=published)

    def test_anonymous_users_are_sent_to_login(self):
        response = self.client.get("/accounts/profile/")
        self.assertRedirects(
            response, "/accounts/login/?next=/accounts/profile/", fetch_redirect_response=False
        )

    def test_profile_lists_only_the_users_articles(self):
        self.client.force_login(self.ana)
        response = self.client.get("/accounts/profile/")

        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "<h1>ana</h1>", html=True)
        self.assertContains(response, "Ana&#x27;s café")
        # Bob's article by its title and link: a bare "Bob" can turn up inside the random CSRF
        # token of the logout form (it did, once in a few thousand runs).
        self.assertNotContains(response, "Bob&#x27;s bridge")
        self.assertNotContains(response, "/articles/bobs-bridge/")
        # The logout button in the header is a POST form.
        self.assertContains(response, 'action="/accounts/logout/"')
