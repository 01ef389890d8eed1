"""A tiny real HTTP server on 127.0.0.1 for fake upstreams.

Each fake subclasses :class:`FakeServer` and implements ``handle(request)``. The
server records every request and can be told to misbehave on a route (status,
Retry-After, delay, held until the test lets it answer (or done at once and only its answer
held: a client that dies then never learns it was done), connection reset, malformed body) a
number of times, so tests exercise the bot's real HTTP code against real sockets.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOLD_MAX = 30.0  # seconds a held answer waits for its test at most (a failed test must not hang)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived (pacing tests compare these)

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    @property
    def params(self) -> dict[str, str]:
        """Query string, or urlencoded form body (Slack Web API accepts both)."""
        merged = dict(self.query)
        ctype = self.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in ctype:
            merged.update(self.form)
        elif "application/json" in ctype and self.body:
            data = self.json
            if isinstance(data, dict):
                merged.update(data)
        return merged


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, (dict, list)):
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(self.body, str):
            data = self.body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        elif self.body is None:
            data = b""
        else:
            data = self.body
        return data, headers


@dataclass
class Fault:
    """Misbehaviour for requests whose ``METHOD path`` starts with ``match``."""

    match: str
    times: int = 1
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: threading.Event | None = None  # answer only once the test sets it (at most HOLD_MAX seconds)
    accept: bool = False  # with ``hold``: do what the request asks at once, hold only the answer
    reset: bool = False
    malformed: bool = False


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a timeout test, a 413) is normal here: no traceback.

    The default handler prints one from a server thread, and Python 3.11's traceback printer
    parses source with ``ast`` in that thread while pytest may be doing the same.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            sys.stderr.write(f"{self.__class__.__name__}: {type(exc).__name__} while serving a request\n")


class FakeServer:
    """Base class: start()/stop(), request log, fault injection."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.latency = 0.0  # seconds every answer takes (a real service is never instant)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on every request and recorded result
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    method=self.command,
                    path=split.path,
                    query={k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with fake.changed:
                    fake.requests.append(req)
                    fault = fake._take_fault(req)
                    fake.changed.notify_all()
                if fault is not None and fault.accept:
                    resp = fake._answer(req)
                    if fault.hold is not None:
                        fault.hold.wait(HOLD_MAX)
                elif fault is not None:
                    if fault.hold is not None:
                        fault.hold.wait(HOLD_MAX)
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.reset:
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                        )
                        self.connection.close()
                        self.close_connection = True
                        return
                    if fault.malformed:
                        resp = Response(200, b"{not json", {"Content-Type": "application/json"})
                    else:
                        resp = Response(fault.status, fault.body, fault.headers)
                else:
                    if fake.latency:
                        time.sleep(fake.latency)
                    resp = fake._answer(req)
                data, headers = resp.encode()
                self.send_response(resp.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        httpd = self._httpd
        self._thread = threading.Thread(
            target=lambda: httpd.serve_forever(poll_interval=0.05), name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- behaviour ----------------------------------------------------------
    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def _answer(self, req: Request) -> Response:
        try:
            return self.handle(req)
        except Exception as exc:  # a bug in the fake must be loud
            return Response(599, {"fake_error": repr(exc)})

    def fail(self, match: str, **kwargs: Any) -> Fault:
        """Queue a fault for requests whose ``"METHOD /path"`` starts with ``match``."""
        fault = Fault(match=match, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, req: Request) -> Fault | None:
        key = f"{req.method} {req.path}"
        for fault in self.faults:
            if fault.times > 0 and key.startswith(fault.match):
                fault.times -= 1
                return fault
        return None

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until predicate() (called under the lock, on every request) is truthy; return it."""
        with self.changed:
            result = self.changed.wait_for(predicate, timeout)
            if not result:
                raise AssertionError(f"{self.name}: timed out waiting; {self.seen()}")
        return result

    def seen(self) -> str:
        """What a timed-out wait reports (subclasses add what their tests look at)."""
        return f"requests={[f'{r.method} {r.path}' for r in self.requests]!r}"

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        with self.lock:
            return [
                r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    def reset_log(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
