"""What ficus asks a loaded Django project: run inside the embedded interpreter, after the
WSGI application has been imported (so django.setup() has run). Only plain data goes back."""

ERROR_PAGE = (
    "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n"
    "</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)


import json


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
    status, content_type, body = server_error_page()
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
        # latin-1 maps bytes to code points one to one, so the page survives JSON unchanged.
        "server_error": {"status": status, "content_type": content_type, "body": body.decode("latin-1")},
    })


def server_error_page():
    """The project's own 500 answer (handler500), rendered once so Rust handlers can send it."""
    try:
        from django.http import HttpRequest
        from django.urls import get_resolver

        response = get_resolver().resolve_error_handler(500)(HttpRequest())
        return response.status_code, response["Content-Type"], bytes(response.content)
    except Exception:
        return 500, "text/html", ERROR_PAGE.encode()


def url_patterns():
    """Every URL pattern of the live URLconf, includes and namespaces resolved, in order, as JSON."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.resolvers import RoutePattern

    found = []

    def walk(patterns, prefix, namespace, is_route):
        for p in patterns:
            route = is_route and isinstance(p.pattern, RoutePattern)
            text = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                ns = p.namespace
                inner = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
                walk(p.url_patterns, text, inner, route)
            elif isinstance(p, URLPattern):
                name = p.name
                if name and namespace:
                    name = f"{namespace}:{name}"
                found.append(
                    {"route": text, "name": name, "view": p.lookup_str, "is_route": route}
                )

    walk(get_resolver().url_patterns, "", None, True)
    return json.dumps(found)
