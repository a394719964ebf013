"""Raw WSGI application for ficus's edge-request tests: each path exercises one corner of
PEP 3333 that Django alone never reaches (late start_response, write(), exc_info, slow streams).

It records close() calls in the file named by EDGE_LOG, one line per call.
"""

import json
import os
import sys
import time


def _log(line):
    path = os.environ.get("EDGE_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Stream:
    """An iterable whose close() is observable."""

    def __init__(self, name, chunks, delay):
        self.name, self.chunks, self.delay = name, chunks, delay

    def __iter__(self):
        for i in range(self.chunks):
            if i:
                time.sleep(self.delay)
            yield b"chunk %d\n" % i

    def close(self):
        _log("closed " + self.name)


# Environs kept alive after their response, as Django's requests are until the garbage collector
# breaks their reference cycles.
KEPT = []


def application(environ, start_response):
    path = environ["PATH_INFO"]
    query = dict(p.split("=", 1) for p in environ["QUERY_STRING"].split("&") if "=" in p)

    if path == "/keep":
        KEPT[:] = [environ]
        return _json(start_response, {"kept": True})
    if path == "/late":
        def late():
            start_response("200 OK", [("Content-Type", "text/plain"), ("X-Late", "yes")])
            yield b"started late"
        return late()

    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        write(b"twice ")
        return [b"then returned"]

    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("replaced before anything was sent")
        except ValueError:
            start_response("503 Replaced", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]

    if path == "/exc-info-late":
        def body():
            yield b"first part"
            try:
                raise ValueError("too late to replace")
            except ValueError:
                start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
            yield b"never"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()

    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Stream(query.get("name", "stream"), int(query.get("n", "5")), float(query.get("delay", "0.2")))

    if path == "/status":
        # An empty answer with this status, and a Content-Length when one is asked for.
        headers = [("Content-Type", "text/plain")]
        if "length" in query:
            headers.append(("Content-Length", query["length"]))
        start_response(query.get("code", "200") + " Status", headers)
        return [b""]

    if path == "/pid":
        # Which worker process answered (the worker-process tests).
        return _json(start_response, {"pid": os.getpid()})

    if path == "/os-environ":
        # The process environment (what `-e KEY=VALUE` set), by the names asked for.
        names = environ.get("QUERY_STRING", "").split(",")
        return _json(start_response, {name: os.environ.get(name) for name in names})

    if path == "/slow":
        time.sleep(float(query.get("s", "1")))
        return _json(start_response, {"slept": query.get("s", "1")})

    if path == "/raise":
        raise RuntimeError("the application failed on purpose")

    # Broken applications: each must become a logged 500, and the next request be served.
    if path == "/not-iterable":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return 42
    if path == "/str-chunk":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["a str, not bytes"]
    if path == "/start-twice":
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"twice"]
    if path == "/never-starts":
        return [b"no start_response"]

    if path == "/lines":
        stream = environ["wsgi.input"]
        first = stream.readline()
        second = stream.readline(3)
        rest = stream.readlines()
        return _json(start_response, {"first": first.decode(), "second": second.decode(), "rest": [r.decode() for r in rest]})

    if path == "/short":
        # Content-Length 10, five bytes delivered: through the iterable, write() or
        # wsgi.file_wrapper over an object that is not a file.
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        via = query.get("via", "list")
        if via == "write":
            write(b"hel")
            return [b"lo"]
        if via == "wrapper":
            class Reader:
                def __init__(self):
                    self.parts = [b"hel", b"lo"]

                def read(self, size=-1):
                    return self.parts.pop(0) if self.parts else b""

            return environ["wsgi.file_wrapper"](Reader(), 2)
        return [b"hello"]
    if path == "/iterate":
        lines = [line.decode() for line in environ["wsgi.input"]]
        return _json(start_response, {"lines": lines})

    # Default: the environ as the application saw it, and the body it could read.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    seen = {k: v for k, v in environ.items() if isinstance(v, str)}
    seen["wsgi.version"] = list(environ["wsgi.version"])
    seen["wsgi.multithread"] = environ["wsgi.multithread"]
    seen["has_file_wrapper"] = "wsgi.file_wrapper" in environ
    seen["body"] = body.decode("latin-1")
    return _json(start_response, seen)
