"""Django's own cost per request, with no server at all: the legacy project's WSGI application
called in a loop on one thread, on the database of the last `bench/run` (bench/.work/).

No server can answer a route faster than this on one core; it tells how much of a row of the
benchmark is Django and how much is the server. Run it as the servers run:

    taskset -c 0 bench/.venv/bin/python bench/django_floor.py
"""
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "legacy_django"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacy.settings")
os.environ["LEGACY_DB_PATH"] = str(ROOT / "bench" / ".work" / "db.sqlite3")
os.environ["DJANGO_DEBUG"] = "0"
from legacy.wsgi import application  # noqa: E402

def environ(path, query=""):
    return {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }

def start_response(status, headers, exc_info=None):
    pass

for path in ["/healthz", "/api/articles/", "/reports/articles.csv"]:
    n = 3000 if path == "/healthz" else 300
    for _ in range(50):
        r = application(environ(path), start_response); b"".join(r); r.close()
    t = time.perf_counter()
    for _ in range(n):
        r = application(environ(path), start_response); b"".join(r); r.close()
    dt = (time.perf_counter() - t) / n
    print(f"{path}: {dt*1e6:.0f} us per request in Django alone ({1/dt:.0f}/s on one thread)")
