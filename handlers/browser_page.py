"""The one look of fblink's browser pages: the login confirmation, the callback's answers, the errors.

Every page is the same document: the fblink bar, one card with a heading and what to do next,
the same stylesheet (inline: the CSP allows no other source). The font list ends with the
emoji and CJK families so every script a name may use is drawn, not shown as empty boxes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from starlette.responses import HTMLResponse

STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','DejaVu Sans','Noto Sans CJK JP',"
    "sans-serif,'Apple Color Emoji','Segoe UI Emoji','Noto Color Emoji';background:#f4f5f7;margin:0;"
    "color:#1d1c1d;line-height:1.5}"
    ".bar{background:#4a154b;color:#fff;padding:10px 24px;font-weight:700;font-size:20px}"
    ".card{background:#fff;max-width:36em;margin:32px auto;border-radius:8px;box-shadow:0 2px 8px #0002;"
    "padding:24px 28px}"
    "h1{font-size:22px;margin:0 0 12px}"
    "dl.who{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#f8f8f8;"
    "border-radius:6px;padding:12px 16px;margin:16px 0}"
    "dl.who dt{color:#616061}dl.who dd{margin:0;font-weight:600;overflow-wrap:anywhere}"
    ".id{color:#616061;font-weight:400;font-family:ui-monospace,monospace;font-size:.9em}"
    ".muted{color:#616061;font-size:14px}"
    "button{font-size:16px;padding:10px 20px;border-radius:6px;border:0;cursor:pointer;background:#1877f2;"
    "color:#fff;font-weight:600}"
    "button:focus-visible{outline:3px solid #1d9bd1;outline-offset:2px}"
)


def who_list(rows: Sequence[tuple[str, str, str]]) -> str:
    """A definition list of (label, name, id): whom a page speaks of, by name, the id beside it."""
    items = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(name)}"
        + (f" <span class='id'>({html.escape(ident)})</span>" if ident and ident != name else "")
        + "</dd>"
        for label, name, ident in rows
    )
    return f"<dl class='who'>{items}</dl>"


def page(
    title: str,
    body: str,
    status: int = 200,
    *,
    extra_html: str = "",
    form_to: str = "'none'",
    referrer: str = "no-referrer",
) -> HTMLResponse:
    """One fblink page: ``body`` is plain text (escaped here), ``extra_html`` trusted markup after it.
    ``form_to``: where its form may go, redirects included (CSP form-action). ``referrer``: the
    confirmation page needs ``same-origin``, or browsers send ``Origin: null`` with its POST and
    the Origin check cannot tell fblink's page from another site's."""
    doc = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>fblink: {html.escape(title)}</title>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<style>{STYLE}</style></head><body><header class='bar'>fblink</header>"
        f"<main class='card'><h1>{html.escape(title)}</h1><p>{html.escape(body)}</p>{extra_html}</main>"
        "</body></html>"
    )
    return HTMLResponse(
        doc,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": referrer,
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; form-action {form_to}",
        },
    )
