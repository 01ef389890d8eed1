"""Logging: plain or JSON lines, a request id per Slack request, secrets redacted.

Redaction is a last line of defence; the code also avoids logging secrets in the
first place (httpx's request logger, which prints URLs with tokens, is muted).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_SECRET_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"EAA[A-Za-z0-9]{6,}"),
    re.compile(r"((?:access_token|client_secret|appsecret_proof|fb_exchange_token|input_token|code|api_secret|secret)=)[^&\s\"']+"),
    re.compile(r"(Basic |Bearer )[A-Za-z0-9+/=._-]+"),
]


def redact(text: str) -> str:
    for pat in _SECRET_PATTERNS:
        text = pat.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return redact(super().formatException(ei))


_REDACTOR = RedactingFilter()
LIBRARY_LOGGERS = ("httpx", "httpcore", "slack_sdk", "slack_sdk.web.async_client", "slack_sdk.webhook.async_client", "slack_bolt", "uvicorn", "apscheduler", "bot", "handlers")


def install_redaction() -> None:
    """Redact at the source loggers too, whatever handlers (pytest, uvicorn, a host app) are attached."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


def setup_logging(fmt: str = "plain", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_REDACTOR)
    install_redaction()
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "slack_sdk.web", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
