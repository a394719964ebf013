#!/usr/bin/env python3
"""Benchmark ficus against gunicorn, granian and a bare hyper hello-world on the legacy project.

Run through `bench/run`, which installs wrk, gunicorn and granian and builds the binaries first.
Every server is started here, once per (server, route), on a private copy of the seeded SQLite
database; wrk loads it from other cores when the machine has them. The result is one Markdown
table (stdout and bench/results-latest.md) and a list of the targets, each met or not.
Python 3.11 standard library only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LEGACY = ROOT / "legacy_django"
THREADS = 4  # Python threads per worker, everywhere: gunicorn gthread 1x4 sets the pace

ROUTES = {
    "healthz": "/healthz",
    "articles": "/api/articles/",
    "csv": "/reports/articles.csv",  # reports.views.articles_csv: a StreamingHttpResponse
    "login": "/accounts/login/",  # LoginView: a template, a form and a CSRF cookie
    "profile": "/accounts/profile/",  # @login_required: the session, the user, a template
    "home": "/",  # articles.views.home: two queries and a template with the layout
    # articles.views.article_detail: the article, its tags and comments, the comment form, a
    # CSRF token, and one UPDATE per read (view_count); the slug is the seeded first article's.
    "article": "/articles/<slug>/",
}
# How ficus's /metrics labels a route whose path has a converter.
METRIC_LABELS = {"article": "/articles/<slug:slug>/"}
# Routes requested as a logged-in user: the session cookie of a seeded user (made in prepare()).
LOGGED_IN = ("profile",)
SESSION = {"cookie": ""}


@dataclass
class Server:
    key: str
    name: str
    workers: int
    threads: int
    backend: str  # what answers the benchmarked routes: "Django", "Rust" or "hyper"
    routes: tuple[str, ...]
    kind: str


DJANGO_ROUTES = ("healthz", "articles", "csv", "login", "profile", "home", "article")

SERVERS = [
    Server("ficus", "ficus (Django)", 1, THREADS, "Django", DJANGO_ROUTES, "ficus"),
    Server("ficus-w2", "ficus (Django)", 2, THREADS, "Django", DJANGO_ROUTES, "ficus"),
    Server("ficus-rust", "ficus (Rust)", 1, THREADS, "Rust",
           ("healthz", "articles", "csv", "login", "profile", "home", "article"), "ficus"),
    Server("gunicorn-gthread", "gunicorn gthread", 1, THREADS, "Django", DJANGO_ROUTES, "gunicorn"),
    Server("gunicorn-sync", "gunicorn sync", 2, 1, "Django", DJANGO_ROUTES, "gunicorn"),
    Server("granian", "granian", 1, THREADS, "Django", DJANGO_ROUTES, "granian"),
    Server("granian-w2", "granian", 2, THREADS, "Django", DJANGO_ROUTES, "granian"),
    Server("hello", "hyper hello-world", 1, 0, "hyper", ("healthz",), "hello"),
]


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int


@dataclass
class Result:
    server: Server
    route: str
    runs: list[Run] = field(default_factory=list)
    rss_total_mib: float | None = None
    rss_largest_mib: float | None = None
    failure: str | None = None
    warnings: list[str] = field(default_factory=list)
    # The streamed CSV: rows (without the header) and bytes of one response.
    csv_rows: int | None = None
    csv_bytes: int | None = None

    @property
    def median(self) -> Run | None:
        if not self.runs:
            return None
        ordered = sorted(self.runs, key=lambda r: r.rps)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def errors(self) -> int:
        return sum(r.non2xx + r.socket_errors for r in self.runs)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- options -------------------------------------------------------------------------------


def env_default(name: str, default):
    return os.environ.get(name, default)


def parse_args() -> argparse.Namespace:
    keys = ", ".join(s.key for s in SERVERS)
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark ficus against gunicorn, granian and a bare hyper hello-world "
        "on the legacy Django project. Each option also reads the environment variable named.",
    )
    p.add_argument("-d", "--duration", type=int, default=int(env_default("BENCH_DURATION", 10)),
                   help="seconds per measured wrk run (BENCH_DURATION, default 10)")
    p.add_argument("-r", "--repeats", type=int, default=int(env_default("BENCH_REPEATS", 3)),
                   help="measured runs per server and route; the median is reported "
                   "(BENCH_REPEATS, default 3)")
    p.add_argument("--warmup", type=int, default=int(env_default("BENCH_WARMUP", 3)),
                   help="seconds of unrecorded load before the runs (BENCH_WARMUP, default 3)")
    p.add_argument("-c", "--connections", type=int,
                   default=int(env_default("BENCH_CONNECTIONS", 32)),
                   help="wrk connections (BENCH_CONNECTIONS, default 32)")
    p.add_argument("-t", "--wrk-threads", type=int,
                   default=int(env_default("BENCH_WRK_THREADS", 1)),
                   help="wrk threads (BENCH_WRK_THREADS, default 1)")
    p.add_argument("--servers", default=env_default("BENCH_SERVERS", ""),
                   help=f"comma-separated subset of: {keys} (BENCH_SERVERS, default all)")
    p.add_argument("--routes", default=env_default("BENCH_ROUTES", ""),
                   help="comma-separated subset of: " + ", ".join(ROUTES)
                   + " (BENCH_ROUTES, default all)")
    p.add_argument("--pin", default=env_default("BENCH_PIN", "auto"),
                   help="'auto' (servers on the first half of the cores, wrk on the rest, "
                   "with taskset), 'off', or SERVER_CPUS:WRK_CPUS in taskset's list syntax, "
                   "e.g. 0-3:4-7 (BENCH_PIN, default auto)")
    p.add_argument("--out", default=env_default("BENCH_OUT", str(BENCH / "results-latest.md")),
                   help="where the Markdown report is written too "
                   "(BENCH_OUT, default bench/results-latest.md)")
    p.add_argument("--workdir", default=env_default("BENCH_WORKDIR", str(BENCH / ".work")),
                   help="scratch: database copy, routes files, server logs; emptied at the start "
                   "(BENCH_WORKDIR, default bench/.work)")
    p.add_argument("--memory", default=env_default("BENCH_MEMORY", "1"),
                   help="1 to measure the peak memory of a 100,000-row CSV export and a 100 MB "
                   "upload after the runs, 0 to skip it (BENCH_MEMORY, default 1)")
    p.add_argument("--start-timeout", type=float, default=60.0,
                   help="seconds a server gets to answer its first request (default 60)")
    p.add_argument("--ficus", required=True, help=argparse.SUPPRESS)
    p.add_argument("--hello", required=True, help=argparse.SUPPRESS)
    p.add_argument("--venv", required=True, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.memory = args.memory not in ("0", "", "no", "false")
    for name in ("ficus", "hello", "venv", "out", "workdir"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    if args.duration < 1 or args.repeats < 1 or args.warmup < 0 or args.connections < 1:
        p.error("duration and repeats must be at least 1, warmup at least 0")
    known = {s.key for s in SERVERS}
    args.server_keys = [k for k in args.servers.split(",") if k] or [s.key for s in SERVERS]
    args.route_keys = [k for k in args.routes.split(",") if k] or list(ROUTES)
    for k in args.server_keys:
        if k not in known:
            p.error(f"unknown server {k!r}; known: {keys}")
    for k in args.route_keys:
        if k not in ROUTES:
            p.error(f"unknown route {k!r}; known: {', '.join(ROUTES)}")
    return args


# --- pinning ---------------------------------------------------------------------------------


def cpu_list(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def pinning(spec: str) -> tuple[list[str], list[str], str]:
    """Command prefixes for the servers and for wrk, and a sentence saying what was done."""
    taskset = shutil.which("taskset")
    if spec == "off":
        return [], [], "none (--pin off)"
    if spec != "auto":
        server, _, load = spec.partition(":")
        if not taskset or not server or not load:
            sys.exit("bench: --pin SERVER_CPUS:WRK_CPUS needs taskset and both lists")
        return (["taskset", "-c", server], ["taskset", "-c", load],
                f"servers on CPUs {server}, wrk on CPUs {load} (taskset, --pin)")
    cpus = sorted(os.sched_getaffinity(0))
    if not taskset:
        return [], [], "none (taskset not found): servers and wrk share all cores"
    if len(cpus) < 2:
        return [], [], "none (one core): servers and wrk share it"
    half = len(cpus) // 2
    server, load = cpus[:half], cpus[half:]
    return (["taskset", "-c", cpu_list(server)], ["taskset", "-c", cpu_list(load)],
            f"servers on CPU {cpu_list(server)}, wrk on CPU {cpu_list(load)} (taskset)")


# --- preparation -----------------------------------------------------------------------------


def server_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("WEB_CONCURRENCY", "VIRTUAL_ENV", "PORT", "DATABASE_URL", "PYTHONPATH",
                 "PYTHONHOME", "FICUS_LOG", "GUNICORN_CMD_ARGS", "FORWARDED_ALLOW_IPS"):
        env.pop(name, None)
    for name in list(env):
        if name.startswith("GRANIAN_"):
            env.pop(name)
    env.update(
        DJANGO_SETTINGS_MODULE="legacy.settings",
        DJANGO_DEBUG="0",
        DJANGO_LOG_LEVEL="WARNING",
        LEGACY_DB_PATH=str(workdir / "db.sqlite3"),
        LEGACY_MEDIA_ROOT=str(workdir / "media"),
        LEGACY_STATIC_ROOT=str(workdir / "static"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def prepare(workdir: Path, venv: Path) -> dict[str, str]:
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "logs").mkdir(parents=True)
    env = server_env(workdir)
    python = str(venv / "bin" / "python")
    log(f"seeding a private database in {workdir / 'db.sqlite3'}")
    for argv in (
        [python, "manage.py", "migrate", "--noinput", "-v", "0"],
        [python, "manage.py", "seed", "--articles", "50", "--seed", "42"],
    ):
        done = subprocess.run(argv, cwd=LEGACY, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"bench: {' '.join(argv[1:])} failed:\n{done.stdout}{done.stderr}")
    # A session for a seeded user, made by Django itself, for the logged-in routes.
    login = ("from django.contrib.auth import get_user_model; "
             "from django.contrib.sessions.backends.db import SessionStore; "
             "u = get_user_model().objects.get(username='alice'); s = SessionStore(); "
             "s['_auth_user_id'] = str(u.pk); "
             "s['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'; "
             "s['_auth_user_hash'] = u.get_session_auth_hash(); s.create(); "
             "print(s.session_key)")
    done = subprocess.run([python, "manage.py", "shell", "-c", login], cwd=LEGACY, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench: making a session failed:\n{done.stdout}{done.stderr}")
    SESSION["cookie"] = f"sessionid={done.stdout.strip().splitlines()[-1]}"
    slug = ("from articles.models import Article; "
            "print(Article.objects.order_by('-published_at', '-id').first().slug)")
    done = subprocess.run([python, "manage.py", "shell", "-c", slug], cwd=LEGACY, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench: finding an article failed:\n{done.stdout}{done.stderr}")
    ROUTES["article"] = f"/articles/{done.stdout.strip().splitlines()[-1]}/"
    write_routes(workdir / "routes-django.toml", "django")
    write_routes(workdir / "routes-rust.toml", "rust")
    return env


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_routes(path: Path, mode: str) -> None:
    """The repository's routes.toml with every entry in one mode, and an absolute Django path."""
    with open(ROOT / "routes.toml", "rb") as f:
        source = tomllib.load(f)
    django = dict(source.get("django", {}))
    django["path"] = str((ROOT / django.get("path", "legacy_django")).resolve())
    lines = ["# Written by bench/bench.py from routes.toml: every entry mode = "
             f'"{mode}".', "", "[django]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in django.items()]
    for entry in source.get("route", []):
        lines += ["", "[[route]]"]
        for k in ("path", "name", "methods", "handler", "new"):
            if k in entry:
                lines.append(f"{k} = {toml_value(entry[k])}")
        lines.append(f"mode = {toml_value(mode)}")
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())  # what was written parses


def command(server: Server, port: int, args, workdir: Path) -> tuple[list[str], Path]:
    venv = Path(args.venv)
    if server.kind == "ficus":
        routes = workdir / ("routes-rust.toml" if server.backend == "Rust" else "routes-django.toml")
        return [
            args.ficus, "serve", "--routes", str(routes), "--venv", str(venv),
            "-w", str(server.workers), "--threads", str(server.threads),
            "-b", f"127.0.0.1:{port}",
            "--state-file", str(workdir / f"{server.key}.state.json"),
            "--shadow-log", str(workdir / "ficus-shadow.jsonl"),
            "--record-log", str(workdir / "ficus-recorded.jsonl"),
        ], workdir
    if server.kind == "gunicorn":
        worker_class = "gthread" if server.threads > 1 else "sync"
        argv = [str(venv / "bin" / "gunicorn"), "legacy.wsgi:application",
                "-k", worker_class, "--workers", str(server.workers)]
        if server.threads > 1:
            argv += ["--threads", str(server.threads)]
        return argv + ["-b", f"127.0.0.1:{port}", "--log-level", "warning"], LEGACY
    if server.kind == "granian":
        return [
            str(venv / "bin" / "granian"), "--interface", "wsgi", "legacy.wsgi:application",
            "--workers", str(server.workers), "--blocking-threads", str(server.threads),
            "--host", "127.0.0.1", "--port", str(port), "--no-ws", "--log-level", "warning",
        ], LEGACY
    if server.kind == "hello":
        return [args.hello, str(port)], workdir
    raise ValueError(server.kind)


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return found


def vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """The peak resident set (VmHWM) of every process in the server's tree, sampled."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peaks: dict[int, int] = {}
        self.stopping = threading.Event()

    def sample(self) -> None:
        for p in descendants(self.pid):
            kib = vm_hwm_kib(p)
            if kib is not None and kib > self.peaks.get(p, 0):
                self.peaks[p] = kib

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            self.sample()

    def finish(self) -> tuple[float, float]:
        self.stopping.set()
        self.join()
        self.sample()
        total = sum(self.peaks.values()) / 1024
        largest = max(self.peaks.values(), default=0) / 1024
        return total, largest


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        cookie = cookie_for(path)
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def wait_ready(proc: subprocess.Popen, port: int, path: str, timeout: float) -> str | None:
    """None once the server answers 200 on path, else why it never did."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before answering"
        try:
            status, _, _ = get(port, path, timeout=2)
            if status == 200:
                return None
            last = f"answered {status} on {path}"
        except OSError as e:
            last = f"no answer ({e.__class__.__name__})"
        time.sleep(0.2)
    return f"not ready after {timeout:.0f} s: {last}"


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server, then SIGKILL to its process group (it leads its own session)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"pid {proc.pid} did not stop within 15 s of SIGTERM: SIGKILL")
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers (workers) of this server only
    except ProcessLookupError:
        pass
    proc.wait()


# --- wrk -------------------------------------------------------------------------------------

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def duration_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def parse_wrk(output: str) -> Run:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise ValueError("unreadable wrk output:\n" + output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    return Run(
        rps=float(rps.group(1)),
        p50_ms=duration_ms(p50.group(1)),
        p99_ms=duration_ms(p99.group(1)),
        requests=int(total.group(1)),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )


def cookie_for(path: str) -> str | None:
    """The Cookie header a route is requested with: a logged-in user's session, or none."""
    logged_in = {ROUTES[r] for r in LOGGED_IN}
    return SESSION["cookie"] if path in logged_in and SESSION["cookie"] else None


def wrk(prefix: list[str], args, port: int, path: str, seconds: int) -> Run:
    cookie = cookie_for(path)
    argv = prefix + ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections),
                     "-d", f"{seconds}s", "--timeout", "5s", "--latency",
                     *(["-H", f"Cookie: {cookie}"] if cookie else []),
                     f"http://127.0.0.1:{port}{path}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse_wrk(done.stdout)


# --- one (server, route) ---------------------------------------------------------------------


def ficus_backend_check(port: int, path: str, expected: str) -> str | None:
    """From ficus's /metrics: did the expected backend answer the route, and only it?"""
    status, _, body = get(port, "/metrics")
    if status != 200:
        return f"/metrics answered {status}"
    key = next((k for k, v in ROUTES.items() if v == path), "")
    label = METRIC_LABELS.get(key, path)
    counts: dict[str, int] = {}
    for m in re.finditer(r'^ficus_requests_total\{route="([^"]*)",backend="([^"]*)",'
                         r'class="[^"]*"\} (\d+)', body.decode(), re.M):
        if m.group(1) == label:
            counts[m.group(2)] = counts.get(m.group(2), 0) + int(m.group(3))
    want = expected.lower()
    others = {b: n for b, n in counts.items() if b != want and n}
    if not counts.get(want):
        return f"/metrics shows no {want} answers for {label}: {counts}"
    if others:
        return f"/metrics shows other backends for {label}: {others}"
    return None


def measure(server: Server, route: str, args, env, workdir: Path, pins) -> Result:
    server_pin, wrk_pin, _ = pins
    result = Result(server, route)
    path = ROUTES[route]
    port = free_port()
    argv, cwd = command(server, port, args, workdir)
    logfile = workdir / "logs" / f"{server.key}-{route}.log"
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(server_pin + argv, cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    sampler = RssSampler(proc.pid)
    try:
        why = wait_ready(proc, port, path, args.start_timeout)
        if why:
            result.failure = why
            detail = tail(logfile, 3)
            log(f"{server.key} {path}: {why}" + (f"\n{detail}" if detail else ""))
            return result
        sampler.start()
        if route == "csv":
            status, _, body = get(port, path)
            if status == 200:
                result.csv_rows, result.csv_bytes = body.count(b"\r\n") - 1, len(body)
        if args.warmup:
            wrk(wrk_pin, args, port, path, args.warmup)
        for i in range(args.repeats):
            run = wrk(wrk_pin, args, port, path, args.duration)
            result.runs.append(run)
            log(f"  {server.key:<17} {path:<22} run {i + 1}/{args.repeats}: "
                f"{run.rps:9.0f} rps  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms"
                + (f"  errors {run.non2xx + run.socket_errors}"
                   if run.non2xx or run.socket_errors else ""))
        if server.kind == "ficus":
            problem = ficus_backend_check(port, path, server.backend)
            if problem:
                result.warnings.append(problem)
                log(f"{server.key} {path}: {problem}")
        if proc.poll() is not None:
            result.warnings.append(f"server exited ({proc.returncode}) during the runs")
        sampler.sample()
        if server.workers > 1 and len(sampler.peaks) < server.workers:
            result.failure = (f"{len(sampler.peaks)} process(es) ran: "
                              f"{server.workers} workers not in effect")
            log(f"{server.key} {path}: {result.failure}; its runs are left out")
            result.runs.clear()
    except Exception as e:  # a broken run is reported in the table, the rest goes on
        result.failure = f"{e.__class__.__name__}: {e}".splitlines()[0]
        log(f"{server.key} {path}: {result.failure}")
    finally:
        if sampler.is_alive():
            result.rss_total_mib, result.rss_largest_mib = sampler.finish()
        stop(proc)
    if result.errors:
        bad = sum(r.requests for r in result.runs)
        result.warnings.append(f"{result.errors} non-2xx/3xx responses or socket errors "
                               f"out of {bad} requests")
    return result


def django_floor(args, env, workdir: Path, pins, routes: list[str]) -> dict[str, float]:
    """Seconds per request of Django alone (bench/django_floor.py: no server, one thread), on the
    servers' cores, per route key; empty when it cannot be measured."""
    paths = [ROUTES[r] for r in routes]
    argv = pins[0] + [str(Path(args.venv) / "bin" / "python"), str(BENCH / "django_floor.py"),
                      "--db", str(workdir / "db.sqlite3"), "--json",
                      *(["--cookie", SESSION["cookie"]] if SESSION["cookie"] else []),
                      "--seconds", str(min(args.duration, 5)), *paths]
    done = subprocess.run(argv, cwd=LEGACY, env=env, capture_output=True, text=True)
    try:
        measured = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        log(f"Django alone could not be measured:\n{done.stdout}{done.stderr}")
        return {}
    return {r: measured[ROUTES[r]] for r in routes if ROUTES[r] in measured}


def server_cpus(pins) -> int:
    """How many CPUs the servers may use in this run."""
    prefix = pins[0]
    if len(prefix) == 3 and prefix[0] == "taskset":
        count = 0
        for part in prefix[2].split(","):
            low, _, high = part.partition("-")
            count += int(high or low) - int(low) + 1
        return count
    return len(os.sched_getaffinity(0))


# --- report ----------------------------------------------------------------------------------


def read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def version_of(argv: list[str], pattern: str = r"(.+)") -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(pattern, done.stdout + done.stderr)
    return m.group(1).strip() if m else "?"


def machine_info(args, pins) -> list[str]:
    cpuinfo = read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", read("/proc/meminfo"), re.M)
    commit = version_of(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "crates",
                            "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True).stdout.strip()
    lock = read(str(ROOT / "Cargo.lock"))
    hyper = re.search(r'name = "hyper"\nversion = "([^"]+)"', lock)
    wrk_version = version_of(["wrk", "-v"], r"(wrk \S+)")

    def pkg(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    return [
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {model.group(1) if model else platform.processor() or '?'}, "
        f"{os.cpu_count()} logical cores",
        f"- RAM: {int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "- RAM: ?",
        f"- kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- ficus: commit {commit}" + (" with uncommitted changes" if dirty else "")
        + f", {version_of(['rustc', '--version'])}, hyper {hyper.group(1) if hyper else '?'}",
        f"- Python {platform.python_version()}, Django {pkg('django')}, "
        f"gunicorn {pkg('gunicorn')}, granian {pkg('granian')}",
        f"- load: {wrk_version}, {args.wrk_threads} thread(s), "
        f"{args.connections} connections, {args.warmup} s warm-up, then the median of "
        f"{args.repeats} run(s) of {args.duration} s per server and route",
        f"- pinning: {pins[2]}",
    ]


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def reference(results: list[Result], route: str) -> Result | None:
    for r in results:
        if r.server.key == "ficus" and r.route == route and r.median:
            return r
    return None


def table(results: list[Result]) -> list[str]:
    lines = [
        "| server | workers × threads | route | backend | rps | p50 ms | p99 ms "
        "| peak RSS MiB (all processes) | largest process MiB | rps vs ficus |",
        "|---|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        s = r.server
        shape = "tokio" if s.kind == "hello" else f"{s.workers} × {s.threads}"
        backend = s.backend + (" (streamed)" if r.route == "csv" else "")
        route = ROUTES[r.route] if s.kind != "hello" else "/healthz (any path)"
        m = r.median
        ref = reference(results, r.route)
        ratio = f"{m.rps / ref.median.rps:.2f}×" if m and ref else "n/a"
        flag = " ⚠" if r.warnings else ""
        if m is None:
            rps, p50, p99 = f"n/a: {r.failure}" if r.failure else "n/a", "n/a", "n/a"
        else:
            rps, p50, p99 = fmt(m.rps, 0), fmt(m.p50_ms, 2), fmt(m.p99_ms, 2)
        lines.append(
            f"| {s.name}{flag} | {shape} | `{route}` | {backend} | {rps} | {p50} | {p99} "
            f"| {fmt(r.rss_total_mib)} | {fmt(r.rss_largest_mib)} | {ratio} |"
        )
    return lines


def csv_table(results: list[Result]) -> list[str]:
    """The streamed export as rows and bytes per second, beside each other in one run."""
    rows = [r for r in results if r.route == "csv" and r.median and r.csv_rows]
    if not rows:
        return []
    lines = [
        f"The streamed CSV (`{ROUTES['csv']}`, {rows[0].csv_rows:,} rows, "
        f"{rows[0].csv_bytes:,} bytes a response):",
        "",
        "| server | backend | responses/s | rows/s | MB/s |",
        "|---|---|--:|--:|--:|",
    ]
    for r in rows:
        rps = r.median.rps
        lines.append(f"| {r.server.name} ({r.server.key}) | {r.server.backend} | {rps:,.0f} "
                     f"| {rps * r.csv_rows:,.0f} | {rps * r.csv_bytes / 1e6:,.1f} |")
    return lines + [""]


def find(results: list[Result], key: str, route: str) -> Result | None:
    for r in results:
        if r.server.key == key and r.route == route:
            return r
    return None


def targets(results: list[Result], floors: dict[str, float], pins) -> list[str]:
    lines = []

    def ratio_line(text: str, num: float | None, den: float | None, goal: float,
                   at_most: bool = False, cause=None) -> None:
        if num is None or den is None or den == 0:
            lines.append(f"- {text}: n/a (not measured in this run)")
            return
        value = num / den
        met = value <= goal if at_most else value >= goal
        sign = "≤" if at_most else "≥"
        line = (f"- {text}: **{value:.2f}×** (target {sign} {goal}×) — "
                + ("met" if met else "**NOT met**"))
        if not met and cause:
            line += f". Why: {cause()}"
        lines.append(line)

    def rps(key: str, route: str) -> float | None:
        r = find(results, key, route)
        return r.median.rps if r and r.median else None

    def against_floor(route: str, other: str, other_name: str, goal: float):
        """Why ficus cannot, or does not, reach `goal` times `other` on a Django route."""
        floor = floors.get(route)
        ours, theirs = rps("ficus", route), rps(other, route)
        if not floor or not ours or not theirs:
            return None

        def cause() -> str:
            django_us = floor * 1e6
            needed = goal * theirs
            if needed >= 1 / floor:
                return (f"it asks for {needed:,.0f} requests/s, and Django alone, with no server "
                        f"at all, manages {1 / floor:,.0f}/s on this route on the servers' "
                        f"core(s) ({django_us:,.0f} µs per request); {other_name} is at "
                        f"{theirs * floor:.0%} of that ceiling, ficus at {ours * floor:.0%}")
            return (f"beyond Django's own {django_us:,.0f} µs per request, ficus spends "
                    f"{1e6 / ours - django_us:,.0f} µs and {other_name} "
                    f"{1e6 / theirs - django_us:,.0f} µs")
        return cause

    for route in ROUTES:
        path = ROUTES[route]
        ratio_line(f"ficus 1 worker vs granian 1 worker, Django `{path}`",
                   rps("ficus", route), rps("granian", route), 1.25,
                   cause=against_floor(route, "granian", "granian", 1.25))
    for route in ROUTES:
        path = ROUTES[route]
        ratio_line(f"ficus 1 worker vs gunicorn gthread 1×4, Django `{path}`",
                   rps("ficus", route), rps("gunicorn-gthread", route), 2.0,
                   cause=against_floor(route, "gunicorn-gthread", "gunicorn", 2.0))
    cores = server_cpus(pins)
    for route in ROUTES:
        path = ROUTES[route]
        one_core = (lambda: f"the servers had {cores} core in this run, so the second worker "
                    "has none of its own; judge this on at least 2 server cores "
                    "(`--pin 0-1:2-3` on a 4-core machine)") if cores < 2 else None
        ratio_line(f"ficus 2 workers vs ficus 1 worker, Django `{path}`",
                   rps("ficus-w2", route), rps("ficus", route), 1.7, cause=one_core)
    ratio_line("ficus Rust-served `/healthz` vs the bare hyper hello-world",
               rps("ficus-rust", "healthz"), rps("hello", "healthz"), 0.9,
               cause=lambda: "the Rust `/healthz` makes a real SQLite round trip per request "
               "through sqlx's connection thread, as Django's view does; the hello-world "
               "answers from memory (see bench/README.md)")
    ratio_line("ficus Rust `/api/articles/` vs ficus Django `/api/articles/`",
               rps("ficus-rust", "articles"), rps("ficus", "articles"), 5.0)

    def largest(key: str, route: str) -> float | None:
        r = find(results, key, route)
        return r.rss_largest_mib if r and r.median else None

    both = [route for route in ROUTES
            if largest("ficus", route) is not None and largest("granian", route) is not None]
    ratio_line("peak RSS of a ficus worker vs a granian worker (largest process, 1 worker, "
               "highest over the Django routes measured for both)",
               max((largest("ficus", route) for route in both), default=None),
               max((largest("granian", route) for route in both), default=None), 1.1,
               at_most=True)
    return lines


def floor_table(results: list[Result], floors: dict[str, float]) -> list[str]:
    """Django alone per route, and what each 1-worker server adds to it per request."""
    if not floors:
        return []
    lines = [
        "## Django alone",
        "",
        "The legacy application called in a loop with no server (`bench/django_floor.py`, one "
        "thread, on the servers' cores): no server can beat this on a Django route. The server "
        "columns are each 1-worker server's time per request (1 / rps) minus Django's own.",
        "",
        "| route | Django alone µs | ceiling rps | ficus adds µs | granian adds µs "
        "| gunicorn gthread adds µs |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for route, floor in floors.items():
        def adds(key: str) -> str:
            r = find(results, key, route)
            return fmt(1e6 / r.median.rps - floor * 1e6, 0) if r and r.median else "n/a"
        lines.append(f"| `{ROUTES[route]}` | {floor * 1e6:,.0f} | {1 / floor:,.0f} "
                     f"| {adds('ficus')} | {adds('granian')} | {adds('gunicorn-gthread')} |")
    return lines + [""]


def report(results: list[Result], floors: dict[str, float], args, pins) -> str:
    out = ["# ficus benchmark", ""]
    if args.duration < 10 or args.repeats < 3:
        out += ["**A short run** (shorter or fewer runs than the defaults): it shows the script "
                "works, its numbers are too noisy for conclusions.", ""]
    out += machine_info(args, pins)
    out += ["", *table(results), "", *csv_table(results)]
    notes = [(r, w) for r in results for w in r.warnings]
    if notes:
        out += ["⚠ warnings:", ""]
        out += [f"- {r.server.name} ({r.server.key}) `{ROUTES[r.route]}`: {w}" for r, w in notes]
        out.append("")
    failed = [r for r in results if r.failure]
    if failed:
        out += ["Not measured:", ""]
        out += [f"- {r.server.name} ({r.server.key}) `{ROUTES[r.route]}`: {r.failure}; "
                f"log: {Path(args.workdir) / 'logs' / f'{r.server.key}-{r.route}.log'}"
                for r in failed]
        out.append("")
    out += [
        "rps vs ficus: against ficus with 1 worker, the route served by Django, on the same "
        "route (the hello-world against `/healthz`). Peak RSS is the sum of VmHWM over the "
        "server's process tree (shared pages counted in each process); largest process is the "
        "biggest single VmHWM, i.e. one worker.",
        "",
        *floor_table(results, floors),
        "## Targets",
        "",
        *targets(results, floors, pins),
        "",
    ]
    return "\n".join(out)


# --- memory ----------------------------------------------------------------------------------

MEMORY_ROWS = 100_000
UPLOAD_BYTES = 100_000_000
CSRF = "abcdefghijklmnopqrstuvwxyzABCDEF"


def tree_peak_mib(pid: int) -> float:
    return sum(vm_hwm_kib(p) or 0 for p in descendants(pid)) / 1024


def stream_csv(port: int) -> tuple[int, int, float]:
    """Reads the export as a client would, 64 KiB at a time: rows, bytes, seconds."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("GET", ROUTES["csv"])
        response = conn.getresponse()
        rows = size = 0
        last = b""
        while chunk := response.read(65536):
            # A line end may straddle two reads.
            rows += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            size += len(chunk)
            last = chunk[-1:]
    finally:
        conn.close()
    return rows - 1, size, time.monotonic() - started


def upload(port: int, size: int) -> tuple[int, float]:
    """POSTs a multipart upload of `size` bytes, sent 1 MiB at a time; status and seconds."""
    head = (f"--B\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n{CSRF}\r\n"
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"large.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = b"\r\n--B--\r\n"
    chunk = b"x" * (1 << 20)

    def body():
        yield head
        left = size
        while left > 0:
            yield chunk[:left]
            left -= len(chunk)
        yield tail

    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/media/upload/", body=body(), headers={
            "Content-Type": "multipart/form-data; boundary=B",
            "Content-Length": str(len(head) + size + len(tail)),
            "Cookie": f"csrftoken={CSRF}",
        })
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


def memory(args, workdir: Path, pins) -> list[str]:
    """Peak memory of the streamed CSV of 100,000 rows and of a 100 MB upload, Rust beside ficus
    serving Django the same requests: VmHWM summed over the server's process tree, idle (after
    one request) and after each."""
    mem = workdir / "memory"
    (mem / "logs").mkdir(parents=True)
    env = server_env(mem)
    python = str(Path(args.venv) / "bin" / "python")
    log(f"memory: seeding {MEMORY_ROWS:,} articles (a minute or two)")
    for argv in ([python, "manage.py", "migrate", "--noinput", "-v", "0"],
                 [python, "manage.py", "seed", "--articles", str(MEMORY_ROWS), "--seed", "42"]):
        done = subprocess.run(argv, cwd=LEGACY, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return ["## Memory", "", f"Not measured: `{' '.join(argv[1:])}` failed.", ""]
    write_routes(mem / "routes-django.toml", "django")
    write_routes(mem / "routes-rust.toml", "rust")
    lines = [
        "## Memory",
        "",
        f"One request each on a database of {MEMORY_ROWS:,} articles: the CSV export read by a "
        f"client 64 KiB at a time, then a {UPLOAD_BYTES // 1_000_000} MB multipart upload. Peak "
        "RSS is VmHWM summed over the server's process tree, after one `/healthz` (idle) and "
        "after each request; the growth is what the request cost at its peak.",
        "",
        "| server | backend | idle MiB | CSV: peak MiB (growth) | CSV rows, MB, s | "
        "upload: peak MiB (growth) | upload status, s |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for key in ("ficus-rust", "ficus"):
        server = next(s for s in SERVERS if s.key == key)
        port = free_port()
        argv, cwd = command(server, port, args, mem)
        logfile = mem / "logs" / f"{key}.log"
        with open(logfile, "wb") as out:
            proc = subprocess.Popen(pins[0] + argv, cwd=cwd, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        try:
            why = wait_ready(proc, port, "/healthz", args.start_timeout)
            if why:
                lines.append(f"| {server.name} | {server.backend} | n/a: {why} | | | | |")
                continue
            idle = tree_peak_mib(proc.pid)
            rows, size, seconds = stream_csv(port)
            after_csv = tree_peak_mib(proc.pid)
            status, upload_seconds = upload(port, UPLOAD_BYTES)
            after_upload = tree_peak_mib(proc.pid)
            log(f"  memory {key}: idle {idle:.0f} MiB, CSV {after_csv:.0f} MiB, "
                f"upload {after_upload:.0f} MiB (status {status})")
            lines.append(
                f"| {server.name} | {server.backend} | {idle:,.0f} "
                f"| {after_csv:,.0f} (+{after_csv - idle:,.0f}) "
                f"| {rows:,}, {size / 1e6:,.1f}, {seconds:,.1f} "
                f"| {after_upload:,.0f} (+{after_upload - after_csv:,.0f}) "
                f"| {status}, {upload_seconds:,.1f} |")
        except Exception as e:  # reported in the table, the run goes on
            lines.append(f"| {server.name} | {server.backend} | n/a: {e.__class__.__name__}: {e} "
                         "| | | | |")
        finally:
            stop(proc)
    return lines + [""]


def main() -> None:
    args = parse_args()
    for tool, hint in (("wrk", "apt-get install wrk"), (args.ficus, "make build"),
                       (args.hello, "cargo build --release -p ficus --example hello")):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found ({hint}; bench/run does it)")
    pins = pinning(args.pin)
    log(f"pinning: {pins[2]}")
    workdir = Path(args.workdir).resolve()
    env = prepare(workdir, Path(args.venv))
    plan = [(s, r) for s in SERVERS if s.key in args.server_keys
            for r in s.routes if r in args.route_keys]
    per_pair = args.warmup + args.repeats * args.duration
    log(f"{len(plan)} server/route pairs, about {len(plan) * (per_pair + 4) // 60 + 1} min")
    django_routes = sorted({r for s, r in plan if s.backend == "Django"}, key=list(ROUTES).index)
    floors = {}
    if django_routes:
        log("Django alone, no server: " + ", ".join(ROUTES[r] for r in django_routes))
        floors = django_floor(args, env, workdir, pins, django_routes)
    results = []
    for server, route in plan:
        log(f"{server.key}: {ROUTES[route]}")
        results.append(measure(server, route, args, env, workdir, pins))
    text = report(results, floors, args, pins)
    if args.memory:
        text += "\n" + "\n".join(memory(args, workdir, pins))
    print(text)
    Path(args.out).write_text(text)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
