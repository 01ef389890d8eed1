"""Logging: plain or JSON lines, a request id per Slack request, secrets redacted.

Redaction happens where every record is born: a LogRecord factory formats the message,
redacts it and drops the arguments, before any logger level, filter or handler sees it.
A filter on a parent logger would miss its children's records (filters run only on the
logger a record was logged to), and a filter on our handler would miss handlers others
attach (pytest's, uvicorn's, a host application's). The factory covers Bolt, slack_sdk,
httpx, httpcore and fblink alike, at every level including DEBUG. The code also avoids
logging secrets in the first place; this is the last line of defence.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

MASK = "[redacted]"
_Q = r"""(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')"""  # a quoted string, JSON or Python repr
# Keys whose values are secrets wherever they appear: query strings, forms, JSON, reprs.
_SECRET_KEY = (
    r"(?:[A-Za-z0-9_]*(?:token|secret|password|_enc)|appsecret_proof|authorization"
    r"|fb_exchange_token|input_token|[A-Za-z0-9_]*(?:private|secret)_key|response_url)"
)

_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # "api_secret": "...", 'access_token': '...', {"state": "..."}: the value, keeping the quotes.
    (
        re.compile(r"""(["']""" + _SECRET_KEY + r"""["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2""", re.I),
        r"\1\2" + MASK + r"\2",
    ),
    (re.compile(r"""(["'](?:code|state)["']\s*:\s*)(["'])(?:\\.|(?!\2).){8,}?\2""", re.I), r"\1\2" + MASK + r"\2"),
    # access_token=..., client_secret='...' (URLs, forms, keyword reprs); code= and state= when long
    # enough to be OAuth values rather than e.g. an error code.
    (
        re.compile(r"(?<![A-Za-z0-9])(" + _SECRET_KEY + r"=)(?!\[redacted\])(?:" + _Q + r"|[^&\s\"',;)}\]]+)", re.I),
        r"\1" + MASK,
    ),
    (
        re.compile(r"(?<![A-Za-z0-9_])((?:code|state)=)(?!\[redacted\])(?:" + _Q + r"|[^&\s\"',;)}\]]{8,})"),
        r"\1" + MASK,
    ),
    # Bare Slack tokens (bot, user, app-level, workflow, refresh, config) and Facebook access tokens
    # (after the key=value rules, so those see the whole value).
    (re.compile(r"\b(?:xox[abposre]|xapp|xwfp)-[A-Za-z0-9-]+"), MASK),
    (re.compile(r"\bEAA[A-Za-z0-9]{6,}"), MASK),
    # Slack's response_url and incoming-webhook URLs: whoever holds one can post into the
    # conversation. Plain, and percent-encoded in a form body.
    (re.compile(r"(https?://hooks\.slack\.com/)(?!\[redacted\])[^\s\"'<>,;)}\]]+", re.I), r"\1" + MASK),
    (re.compile(r"(https?%3A%2F%2Fhooks\.slack\.com%2F)(?!\[redacted\])[^&\s\"'<>,;)}\]]+", re.I), r"\1" + MASK),
    # Authorization headers in any form.
    (re.compile(r"\b(Basic|Bearer)(\s+)[A-Za-z0-9+/=._~-]+", re.I), r"\1\2" + MASK),
    # Whatever a user typed into a modal's text input (e.g. a Vonage API secret), as Bolt and
    # the Socket Mode client dump request bodies at DEBUG: {"type": "plain_text_input", "value": "..."}.
    (
        re.compile(
            r"""(["']type["']\s*:\s*["']plain_text_input["']\s*,\s*["']value["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2"""
        ),
        r"\1\2" + MASK + r"\2",
    ),
    (
        re.compile(
            r"""(["']value["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2(\s*,\s*["']type["']\s*:\s*["']plain_text_input["'])"""
        ),
        r"\1\2" + MASK + r"\2\3",
    ),
    # The same, percent-encoded in a form body (payload=%7B%22type%22%3A%22plain_text_input%22...).
    (re.compile(r"(%22type%22%3A%22plain_text_input%22%2C%22value%22%3A%22).*?(%22)", re.I), r"\1" + MASK + r"\2"),
]

_known: set[str] = set()
_known_re: re.Pattern[str] | None = None
_known_lock = threading.Lock()


def register_secrets(values: Iterable[str | None]) -> None:
    """Values redacted wherever they appear (configured secrets); very short ones are skipped."""
    global _known_re
    fresh = {v.strip() for v in values if v and len(v.strip()) >= 8} - _known
    if not fresh:
        return
    with _known_lock:
        _known.update(fresh)
        _known_re = re.compile("|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True)))


def redact(text: str) -> str:
    for pat, repl in _SECRET_PATTERNS:
        text = pat.sub(repl, text)
    known = _known_re
    return known.sub(MASK, text) if known is not None else text


def format_exception(exc: BaseException) -> str:
    """A traceback like the interpreter's, without 3.11's caret lines: those call ``ast.parse``,
    which is not thread-safe in CPython 3.11 and can break a parse running in another thread."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    note = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, note))
        if current.__cause__ is not None:
            current, note = current.__cause__, "The above exception was the direct cause of the following exception:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, note = current.__context__, "During handling of the above exception, another exception occurred:"
        else:
            current = None
    lines: list[str] = []
    for err, joiner in reversed(chain):
        if err.__traceback__ is not None:
            lines.append("Traceback (most recent call last):\n")
            for fs in traceback.extract_tb(err.__traceback__):
                lines.append(f'  File "{fs.filename}", line {fs.lineno}, in {fs.name}\n')
                if fs.line:
                    lines.append(f"    {fs.line.strip()}\n")
        lines.extend(traceback.format_exception_only(type(err), err))
        if joiner:
            lines.append(f"\n{joiner}\n\n")
    return "".join(lines).rstrip("\n")


def _redacted_arg(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    clean = redact(text)
    return value if clean == text and redact(repr(value)) == repr(value) else clean


def _clean_args(record: logging.LogRecord, clean_message: str) -> Any:
    """The arguments with secrets redacted one by one, when that renders the same clean message:
    formatters that read ``args`` (uvicorn's access log) keep working. Otherwise None."""
    args = record.args
    if isinstance(args, tuple):
        fresh: Any = tuple(_redacted_arg(a) for a in args)
    elif isinstance(args, dict):
        fresh = {k: _redacted_arg(v) for k, v in args.items()}
    else:
        return None
    try:
        rendered = str(record.msg) % fresh if fresh else str(record.msg)
    except (TypeError, ValueError, KeyError):
        return None
    return fresh if rendered == clean_message and redact(repr(fresh)) == repr(fresh) else None


# slack_sdk's webhook client (response_url) logs the URL it posts to at DEBUG, whatever its host.
_WEBHOOK_LOGGER = "slack_sdk.webhook"
_WEBHOOK_URL = re.compile(r"((?:\burl: |API call: ))(?!\[redacted\])\S+")


def redact_record_text(name: str | None, text: str) -> str:
    """``redact``, plus the URL in the webhook client's own messages (a response_url)."""
    text = redact(text)
    if name and (name == _WEBHOOK_LOGGER or name.startswith(_WEBHOOK_LOGGER + ".")):
        text = _WEBHOOK_URL.sub(r"\1" + MASK, text)
    return text


def scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Redact the record's message and arguments (or freeze the message and drop them)."""
    if getattr(record, "_fblink_clean", None) == (record.msg, record.args):
        return record  # already scrubbed, and not changed since (makeLogRecord replaces msg)
    record.request_id = request_id.get()
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep what there is, still redacted
        message = f"{record.msg!s} {record.args!r}"
    clean = redact_record_text(record.name, message)
    if record.args:
        if clean != message or redact(repr(record.args)) != repr(record.args):
            args = _clean_args(record, clean)
            record.msg, record.args = (record.msg, args) if args is not None else (clean, None)
    elif clean != message:
        record.msg = clean
    if record.exc_info and not record.exc_text:
        exc = record.exc_info[1]
        record.exc_text = redact(format_exception(exc) if exc is not None else str(record.exc_info[0]))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._fblink_clean = (record.msg, record.args)
    return record


class RedactingFilter(logging.Filter):
    """For handlers: catches records built without the factory (``logging.makeLogRecord``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": redact(record.getMessage()),
        }
        if record.exc_text:
            data["exc"] = redact(record.exc_text)
        elif record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatException(self, ei: ExcInfo) -> str:
        return redact(super().formatException(ei))


_REDACTOR = RedactingFilter()


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class _RedactingFactory:
    """Wraps the LogRecord factory in place when fblink starts; its class marks it as installed."""

    fblink_redacting = True

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub(self.inner(*args, **kwargs))


def install_redaction() -> None:
    """Redact every record any logger creates from now on, whatever handlers are attached."""
    current = logging.getLogRecordFactory()
    if getattr(current, "fblink_redacting", False):
        return

    logging.setLogRecordFactory(_RedactingFactory(current))


def setup_logging(fmt: str = "plain", level: str = "INFO") -> None:
    install_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_REDACTOR)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "slack_sdk.web", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


install_redaction()  # as soon as fblink is imported: libraries may log before the app is built
