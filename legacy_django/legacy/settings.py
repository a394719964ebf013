"""Settings for the legacy project.

Everything that differs between machines comes from the environment, with
defaults that are safe enough to run the project from a fresh checkout.
"""
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name):
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY",
    "django-insecure-legacy-dev-key-change-me-in-production-0123456789",
)

# Off by default so the templated 404/500 pages are what people see.
DEBUG = env_bool("DJANGO_DEBUG", False)

ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"] + env_list(
    "DJANGO_ALLOWED_HOSTS"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "articles",
    "accounts",
    "media",
    "ai",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "legacy.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "legacy" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "legacy.wsgi.application"


# Database: SQLite under var/ unless DATABASE_URL points elsewhere.

DB_PATH = Path(os.environ.get("LEGACY_DB_PATH", VAR_DIR / "db.sqlite3"))

if os.environ.get("DATABASE_URL"):
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True
        )
    }
else:
    # SQLite cannot create the file's directory itself, and var/ is not in git.
    DB_PATH.parent.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DB_PATH,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                # Threads of an embedding server share the file: wait for
                # locks instead of failing, let readers run beside a writer,
                # and take the write lock up front so transactions cannot
                # deadlock upgrading from a read lock.
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/accounts/profile/"
LOGOUT_REDIRECT_URL = "/"


LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True


STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("LEGACY_STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "legacy" / "static"]

# Files are served by media.views.serve_file, which lives under this prefix.
MEDIA_URL = "/media/files/"
MEDIA_ROOT = Path(os.environ.get("LEGACY_MEDIA_ROOT", VAR_DIR / "media"))


# Object storage. Signing URLs is done locally by the SDKs, so the dummy
# defaults are enough to exercise the code without an account.

OSS_ACCESS_KEY_ID = os.environ.get("OSS_ACCESS_KEY_ID", "legacy-oss-access-key-id")
OSS_ACCESS_KEY_SECRET = os.environ.get("OSS_ACCESS_KEY_SECRET", "legacy-oss-access-key-secret")
OSS_ENDPOINT = os.environ.get("OSS_ENDPOINT", "https://oss-cn-hangzhou.aliyuncs.com")
OSS_BUCKET = os.environ.get("OSS_BUCKET", "legacy-bucket")

COS_SECRET_ID = os.environ.get("COS_SECRET_ID", "legacy-cos-secret-id")
COS_SECRET_KEY = os.environ.get("COS_SECRET_KEY", "legacy-cos-secret-key")
COS_REGION = os.environ.get("COS_REGION", "ap-guangzhou")
COS_BUCKET = os.environ.get("COS_BUCKET", "legacy-1250000000")


# A server embedding this project must show tracebacks whatever DEBUG says,
# so request errors and the apps' own logs always go to stderr.
LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO").upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        },
    },
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        **{
            name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
            for name in ("legacy", "articles", "accounts", "media", "ai", "reports")
        },
    },
}
