"""Issue 17, item 3: every browser and monitoring route reads a body the way the Slack route
does: an over-long Content-Length is refused (413) before a byte of the body is read, and a
chunked body is cut off at the limit. Driven over raw sockets and HTTP, as an anonymous client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.flows import button_urls, query

ROUTES = [
    ("GET", "/facebook/login?state=x"),
    ("POST", "/facebook/login"),
    ("GET", "/facebook/callback?state=x&code=y"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]


def _raw(url: str, request: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(300)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_an_over_long_declared_body_is_refused_before_it_is_sent(bot, method, path):
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 419430400\r\n\r\nstate="
    ).encode()
    answer = _raw(bot.url, head)  # 400 MB announced, 6 bytes sent: the answer cannot wait for the rest
    assert answer.startswith(b"HTTP/1.1 413"), answer


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_chunked_body_is_cut_off_at_the_limit(bot, method, path):
    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 4 MiB, chunked: no Content-Length
            yield b"x" * 65536

    try:
        r = bot.http.request(method, bot.url + path, content=chunks())
        assert r.status_code == 413 and "too large" in r.text
    except httpx.TransportError:
        pass  # answered 413 and closed while the client was still sending: also a refusal


def test_the_confirmation_post_over_the_limit_confirms_nothing(bot):
    (url,) = button_urls(bot.command("login").json())
    bot.http.get(url.replace("https://fblink.test", bot.url))  # the page: its cookie
    padded = {"state": query(url)["state"], "csrf": "0" * 64, "pad": "x" * 16384}  # the form is ~150 bytes
    r = bot.http.post(bot.url + "/facebook/login", data=padded, headers={"Origin": "https://fblink.test"})
    assert r.status_code == 413
    confirmed = bot.store.one("SELECT COUNT(*) AS n FROM oauth_states WHERE confirmed_at IS NOT NULL")
    assert confirmed["n"] == 0
    # a body within the limit is still read whole (the form is parsed, the token checked)
    r = bot.http.post(
        bot.url + "/facebook/login",
        data={"state": query(url)["state"], "csrf": "0" * 64},
        headers={"Origin": "https://fblink.test"},
    )
    assert r.status_code == 403 and "Login not confirmed" in r.text
