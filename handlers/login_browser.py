"""What ties a Facebook login to the browser that confirmed it.

fblink's confirmation page gives the browser a random cookie used for nothing else. The
confirmation POST must carry that cookie, a form token derived from it and the state, and
fblink's own Origin; the state then stores only the cookie's hash, and the Facebook callback
must come with the same cookie. A login link or Facebook dialog URL that travels to another
browser (forwarded, or planted in a form on another web site) therefore cannot finish there.

The form token is HMAC(cookie, state): it needs no server secret, so rotating
FBLINK_SECRET_KEY never breaks a confirmation page that is open.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "fblink_login"
COOKIE_AGE = 3600  # seconds: longer than a state lives (10 minutes)
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cookie_name(public_url: str) -> str:
    """``__Host-`` where browsers reach fblink over HTTPS (no subdomain or plain-HTTP page can
    set or shadow it). Over plain HTTP (the demo on 127.0.0.1) that prefix needs ``Secure``,
    which Chromium refuses to store from an http:// page, loopback included: the plain name."""
    return ("__Host-" if public_url.lower().startswith("https://") else "") + COOKIE


def browser_cookie(request: Request, public_url: str) -> str | None:
    value = request.cookies.get(cookie_name(public_url), "")
    return value if _WELL_FORMED.fullmatch(value) else None


def new_cookie() -> str:
    return secrets.token_urlsafe(32)


def set_browser_cookie(response: Response, value: str, public_url: str) -> None:
    response.set_cookie(
        cookie_name(public_url),
        value,
        max_age=COOKIE_AGE,
        path="/",
        secure=public_url.lower().startswith("https://"),
        httponly=True,
        samesite="lax",  # sent on Facebook's redirect back (a top-level GET), never on another site's POST
    )


def browser_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def form_token(cookie: str, state: str) -> str:
    return hmac.new(cookie.encode(), b"fblink login confirmation\x00" + state.encode(), hashlib.sha256).hexdigest()


def token_ok(cookie: str | None, state: str, token: str) -> bool:
    return cookie is not None and hmac.compare_digest(token.encode(), form_token(cookie, state).encode())


def same_browser(cookie: str | None, stored: str | None) -> bool:
    return cookie is not None and stored is not None and hmac.compare_digest(browser_hash(cookie), stored)


def from_own_page(request: Request, public_url: str) -> bool:
    """The POST came from a page of fblink's own origin: its Origin header or, when a browser
    sends none, its Referer. Neither (or ``null``) is refused."""
    own = origin_of(public_url)
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.strip().lower() == own
    referer = request.headers.get("referer")
    return referer is not None and origin_of(referer) == own
