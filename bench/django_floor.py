"""Django's own cost per request, with no server at all: the legacy project's WSGI application
called in a loop on one thread, on the benchmark's database.

No server can answer a route faster than this on one core; it tells how much of a row of the
benchmark is Django and how much is the server. `bench.py` runs it on the servers' cores in
every run and prints it under the table; by hand, after a `bench/run`:

    taskset -c 0 bench/.venv/bin/python bench/django_floor.py

`--json` prints {path: seconds per request} instead of sentences.
"""
import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["/healthz", "/api/articles/", "/reports/articles.csv", "/accounts/login/",
         "/accounts/profile/"]
COOKIE = {"value": ""}


def environ(path):
    cookie = {"HTTP_COOKIE": COOKIE["value"]} if COOKIE["value"] else {}
    return {
        **cookie,
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def start_response(status, headers, exc_info=None):
    if not status.startswith("200"):
        raise SystemExit(f"django_floor: the application answered {status}")


def seconds_per_request(application, path, seconds):
    """The mean time of one request, over about `seconds` of back-to-back calls."""
    def once():
        r = application(environ(path), start_response)
        b"".join(r)
        r.close()

    warm_until = time.perf_counter() + min(1.0, seconds / 3)
    while time.perf_counter() < warm_until:
        once()
    n, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        once()
        n += 1
    return elapsed / n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default=str(ROOT / "bench" / ".work" / "db.sqlite3"),
                   help="the seeded SQLite database (default: the last bench run's)")
    p.add_argument("--seconds", type=float, default=3.0, help="per path (default 3)")
    p.add_argument("--json", action="store_true", help="print {path: seconds per request}")
    p.add_argument("--cookie", default="",
                   help="a Cookie header for every request (a logged-in user's session)")
    p.add_argument("paths", nargs="*", default=PATHS)
    args = p.parse_args()
    COOKIE["value"] = args.cookie
    sys.path.insert(0, str(ROOT / "legacy_django"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacy.settings")
    os.environ["LEGACY_DB_PATH"] = args.db
    os.environ["DJANGO_DEBUG"] = "0"
    from legacy.wsgi import application

    floors = {path: seconds_per_request(application, path, args.seconds) for path in args.paths}
    if args.json:
        print(json.dumps(floors))
        return
    for path, dt in floors.items():
        print(f"{path}: {dt * 1e6:.0f} us per request in Django alone ({1 / dt:.0f}/s on one "
              "thread)")


if __name__ == "__main__":
    main()
