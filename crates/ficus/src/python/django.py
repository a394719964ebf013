"""What ficus asks a loaded Django project: run inside the embedded interpreter, after the
WSGI application has been imported (so django.setup() has run). Only plain data goes back."""

import json

# Django's own titles for its default error pages (django.views.defaults).
TITLES = {400: "Bad Request (400)", 403: "403 Forbidden", 500: "Server Error (500)"}


def default_page(status):
    """Django's default error page, for a project whose own handler cannot render here."""
    from django.views.defaults import ERROR_PAGE_TEMPLATE

    body = ERROR_PAGE_TEMPLATE % {"title": TITLES[status], "details": ""}
    return status, "text/html", body.encode()


def sqlite_version(engine):
    """The SQLite library Django's connections run, when the engine is SQLite."""
    if engine != "django.db.backends.sqlite3":
        return None
    import sqlite3

    return sqlite3.sqlite_version


def facts():
    """Database settings, and what Django's middleware adds around every view, as JSON."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    options = db.get("OPTIONS") or {}
    middleware = list(settings.MIDDLEWARE)
    security = "django.middleware.security.SecurityMiddleware" in middleware
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    referrer = settings.SECURE_REFERRER_POLICY if security else None
    if referrer and not isinstance(referrer, str):
        referrer = ",".join(v.strip() for v in referrer)
    hsts = None
    if security and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
    xframe = "django.middleware.clickjacking.XFrameOptionsMiddleware" in middleware
    # The response phase runs MIDDLEWARE last to first; ported responses add in that order.
    adders = {
        "django.middleware.security.SecurityMiddleware": "security",
        "django.contrib.sessions.middleware.SessionMiddleware": "session",
        "django.middleware.common.CommonMiddleware": "common",
        "django.middleware.csrf.CsrfViewMiddleware": "csrf",
        "django.contrib.messages.middleware.MessageMiddleware": "messages",
        "django.middleware.clickjacking.XFrameOptionsMiddleware": "x_frame_options",
    }
    response_phase = [adders[path] for path in reversed(middleware) if path in adders]
    status, content_type, body = server_error_page()
    bad_request, forbidden = page(400), page(403)
    return json.dumps({
        "database": {
            "engine": db.get("ENGINE") or "",
            "name": str(db.get("NAME") or ""),
            "user": str(db.get("USER") or ""),
            "password": str(db.get("PASSWORD") or ""),
            "host": str(db.get("HOST") or ""),
            "port": str(db.get("PORT") or ""),
            "timeout": float(options["timeout"]) if "timeout" in options else None,
            "sslmode": options.get("sslmode"),
            "python_sqlite": sqlite_version(db.get("ENGINE") or ""),
        },
        "allowed_hosts": [str(h) for h in allowed_hosts],
        "use_x_forwarded_host": bool(settings.USE_X_FORWARDED_HOST),
        "x_frame_options": str(settings.X_FRAME_OPTIONS).upper() if xframe else None,
        "content_length": "django.middleware.common.CommonMiddleware" in middleware,
        "data_upload_max_memory_size": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        "nosniff": bool(security and settings.SECURE_CONTENT_TYPE_NOSNIFF),
        "referrer_policy": referrer or None,
        "cross_origin_opener_policy": (
            settings.SECURE_CROSS_ORIGIN_OPENER_POLICY if security else None
        ) or None,
        "hsts": hsts,
        "ssl_redirect": bool(security and settings.SECURE_SSL_REDIRECT),
        "server_error": plain_page(status, content_type, body),
        "bad_request": plain_page(*bad_request),
        "forbidden": plain_page(*forbidden),
        "response_phase": response_phase,
    })


def server_error_page():
    """The project's own 500 answer (handler500), rendered once so Rust handlers can send it."""
    try:
        from django.http import HttpRequest
        from django.urls import get_resolver

        response = get_resolver().resolve_error_handler(500)(HttpRequest())
        return response.status_code, response["Content-Type"], bytes(response.content)
    except Exception:
        return default_page(500)


def plain_page(status, content_type, body):
    # latin-1 maps bytes to code points one to one, so the page survives JSON unchanged.
    return {"status": status, "content_type": content_type, "body": body.decode("latin-1")}


def url_patterns():
    """Every URL pattern of the live URLconf, includes and namespaces resolved, in order, as JSON.

    Each says whose it is: the project's own (`app` None), or an installed app's whose code is
    not the project's (`app` its label, "admin" for the admin site), so the migration's total
    can count what a team ports apart from what it keeps."""
    import os
    import sys
    import sysconfig

    from django.apps import apps
    from django.conf import settings
    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.resolvers import RoutePattern

    paths = sysconfig.get_paths()
    libraries = {
        os.path.realpath(paths[key]) for key in ("purelib", "platlib", "stdlib") if paths.get(key)
    }

    def installed_app(module_name):
        """The label of the app a module outside the project belongs to; None for the project's."""
        module = sys.modules.get(module_name or "")
        path = getattr(module, "__file__", None)
        if path and not any(
            os.path.realpath(path).startswith(library + os.sep) for library in libraries
        ):
            return None
        config = apps.get_containing_app_config(module_name or "")
        return config.label if config else (module_name or "?").split(".")[0]

    found = []

    def walk(patterns, prefix, namespace, is_route, owner, app_name):
        for p in patterns:
            route = is_route and isinstance(p.pattern, RoutePattern)
            text = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                ns = p.namespace
                inner = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
                conf = p.urlconf_name
                # An included module decides for its patterns; an included list (the admin
                # site's) leaves it to each view, under the include's app name.
                if isinstance(conf, str):
                    inner_owner = (installed_app(conf),)
                elif hasattr(conf, "__name__"):
                    inner_owner = (installed_app(conf.__name__),)
                else:
                    inner_owner = None
                walk(p.url_patterns, text, inner, route, inner_owner, p.app_name or app_name)
            elif isinstance(p, URLPattern):
                name = p.name
                if name and namespace:
                    name = f"{namespace}:{name}"
                if owner:
                    app = owner[0]
                else:
                    app = installed_app(getattr(p.callback, "__module__", ""))
                    app = app_name or app if app else None
                found.append(
                    {"route": text, "name": name, "view": p.lookup_str, "is_route": route, "app": app}
                )

    walk(get_resolver().url_patterns, "", None, True, (installed_app(settings.ROOT_URLCONF),), None)
    return json.dumps(found)


def web():
    """What ported views need to follow Django's sessions, users, CSRF, messages, forms and
    templates: the settings as the project has them, and a few answers rendered once."""
    from django.apps import apps
    from django.conf import settings

    middleware = list(settings.MIDDLEWARE)

    def has(path):
        return path in middleware

    user_table = user_pk = username_field = None
    last_login = False
    if apps.is_installed("django.contrib.auth"):
        from django.contrib.auth import get_user_model

        User = get_user_model()
        user_table = User._meta.db_table
        user_pk = User._meta.pk.column
        username_field = User.USERNAME_FIELD
        last_login = any(f.name == "last_login" for f in User._meta.concrete_fields)
    storages = getattr(settings, "STORAGES", {}) or {}
    static_backend = (storages.get("staticfiles") or {}).get("BACKEND", "")
    csrf_header = settings.CSRF_HEADER_NAME
    return json.dumps({
        "secret_key": str(settings.SECRET_KEY),
        "secret_key_fallbacks": [str(k) for k in getattr(settings, "SECRET_KEY_FALLBACKS", [])],
        "session_middleware": has("django.contrib.sessions.middleware.SessionMiddleware"),
        "csrf_middleware": has("django.middleware.csrf.CsrfViewMiddleware"),
        "auth_middleware": has("django.contrib.auth.middleware.AuthenticationMiddleware"),
        "messages_middleware": has("django.contrib.messages.middleware.MessageMiddleware"),
        "session": {
            "engine": settings.SESSION_ENGINE,
            "serializer": settings.SESSION_SERIALIZER,
            "cookie_name": settings.SESSION_COOKIE_NAME,
            "cookie_age": int(settings.SESSION_COOKIE_AGE),
            "cookie_domain": settings.SESSION_COOKIE_DOMAIN,
            "cookie_secure": bool(settings.SESSION_COOKIE_SECURE),
            "cookie_httponly": bool(settings.SESSION_COOKIE_HTTPONLY),
            "cookie_samesite": settings.SESSION_COOKIE_SAMESITE or None,
            "cookie_path": settings.SESSION_COOKIE_PATH,
            "save_every_request": bool(settings.SESSION_SAVE_EVERY_REQUEST),
            "expire_at_browser_close": bool(settings.SESSION_EXPIRE_AT_BROWSER_CLOSE),
        },
        "csrf": {
            "cookie_name": settings.CSRF_COOKIE_NAME,
            "cookie_age": settings.CSRF_COOKIE_AGE,
            "cookie_domain": settings.CSRF_COOKIE_DOMAIN,
            "cookie_path": settings.CSRF_COOKIE_PATH,
            "cookie_secure": bool(settings.CSRF_COOKIE_SECURE),
            "cookie_httponly": bool(settings.CSRF_COOKIE_HTTPONLY),
            "cookie_samesite": settings.CSRF_COOKIE_SAMESITE or None,
            "header_meta_name": csrf_header,
            # META's HTTP_X_CSRFTOKEN is the header X-CSRFToken; other META keys have no header.
            "header": csrf_header[5:].replace("_", "-").lower() if csrf_header.startswith("HTTP_") else None,
            "trusted_origins": list(settings.CSRF_TRUSTED_ORIGINS),
            "use_sessions": bool(settings.CSRF_USE_SESSIONS),
        },
        "auth": {
            "user_table": user_table,
            "user_pk": user_pk,
            "username_field": username_field,
            "backends": list(settings.AUTHENTICATION_BACKENDS),
            "login_url": str(settings.LOGIN_URL),
            "login_redirect_url": str(settings.LOGIN_REDIRECT_URL),
            "logout_redirect_url": None if settings.LOGOUT_REDIRECT_URL is None else str(settings.LOGOUT_REDIRECT_URL),
            "password_hashers": list(settings.PASSWORD_HASHERS),
            "last_login": last_login,
        },
        "messages": {
            "storage": settings.MESSAGE_STORAGE,
            "level": int(getattr(settings, "MESSAGE_LEVEL", 20)),
        },
        "uploads": {
            "data_upload_max_memory_size": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
            "data_upload_max_number_fields": settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
            "data_upload_max_number_files": getattr(settings, "DATA_UPLOAD_MAX_NUMBER_FILES", None),
            "file_upload_temp_dir": (
                None if settings.FILE_UPLOAD_TEMP_DIR is None else str(settings.FILE_UPLOAD_TEMP_DIR)
            ),
        },
        "media": media(),
        "templates": {
            "time_zone": str(settings.TIME_ZONE or "UTC"),
            "use_tz": bool(settings.USE_TZ),
            "static_url": str(settings.STATIC_URL or ""),
            "static_storage": static_backend,
        },
    })


def media():
    """The default storage as ported views store and serve files, and Python's mimetypes tables,
    which FileResponse's Content-Type comes from."""
    import mimetypes

    from django.core.files.storage import storages

    if not mimetypes.inited:
        mimetypes.init()
    storage = storages["default"]
    backend = f"{type(storage).__module__}.{type(storage).__qualname__}"
    filesystem = hasattr(storage, "location") and hasattr(storage, "base_url")
    return {
        "backend": backend,
        "root": str(storage.location) if filesystem else "",
        "url": str(storage.base_url or "") if filesystem else "",
        "file_permissions": getattr(storage, "file_permissions_mode", None),
        "directory_permissions": getattr(storage, "directory_permissions_mode", None),
        "mimetypes": {
            "types_map": dict(mimetypes.types_map),
            "encodings_map": dict(mimetypes.encodings_map),
            "suffix_map": dict(mimetypes.suffix_map),
        },
    }


def page(status):
    """The project's own answer for an error status (handler400, handler403), rendered once for
    an anonymous request, so Rust handlers can answer as Django would."""
    from django.core.exceptions import PermissionDenied
    from django.http import HttpRequest
    from django.urls import get_resolver

    try:
        request = HttpRequest()
        request.path = request.path_info = "/"
        request.META["SERVER_NAME"] = "localhost"
        request.META["SERVER_PORT"] = "80"
        exception = PermissionDenied() if status == 403 else Exception()
        response = get_resolver().resolve_error_handler(status)(request, exception)
        return response.status_code, response["Content-Type"], bytes(response.content)
    except Exception:  # a handler that needs more of the request than this one has
        return default_page(status)


def not_found_page(path):
    """handler404's answer for a Rust handler's not_found() when the migration has not ported
    404.html: the project's page for this path, as an anonymous request sees it."""
    from django.http import Http404, HttpRequest
    from django.urls import get_resolver

    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = path
    request.META["SERVER_NAME"] = "localhost"
    request.META["SERVER_PORT"] = "80"
    response = get_resolver().resolve_error_handler(404)(request, Http404())
    return response.status_code, response["Content-Type"], bytes(response.content)


def csrf_failure(reason, method, path):
    """CSRF_FAILURE_VIEW's answer for a refused request: (status, content type, body)."""
    from django.http import HttpRequest
    from django.middleware.csrf import _get_failure_view

    request = HttpRequest()
    request.method = method
    request.path = request.path_info = path
    response = _get_failure_view()(request, reason=reason)
    return response.status_code, response["Content-Type"], bytes(response.content)
