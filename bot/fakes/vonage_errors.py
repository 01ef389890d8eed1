"""Vonage's error bodies for the fake: RFC 7807 problem JSON, as the specs and Vonage's
API-errors page describe them (``type``, ``title``, ``detail``, ``instance``, and
``invalid_params`` / ``invalid_parameters`` for validation errors).

``problem_for(status)`` gives the body Vonage sends for each status fblink can meet:
401, 403, 404, 405, 406, 409, 415, 422, 429 (with ``Retry-After``) and 5xx, so tests
that inject a failure get the real shape rather than an ad-hoc one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from bot.fakes.base import Response

PROBLEM = "application/problem+json"
INVALID_PARAMS_TYPE = "https://www.nexmo.com/messages/Errors#InvalidParams"
FORBIDDEN_TYPE = "https://www.nexmo.com/messages/Errors#Forbidden"
CONFLICT_TYPE = "https://www.nexmo.com/messages/Errors#Conflict"
NOT_FOUND_TYPE = "https://developer.nexmo.com/api-errors#not-found"
UNAUTHORIZED_TYPE = "https://developer.nexmo.com/api-errors#unauthorized"
WRONG_VERB_TYPE = "https://developer.nexmo.com/api-errors#wrong-verb"
THROTTLED_TYPE = "https://developer.nexmo.com/api-errors#throttled"
UNPROCESSABLE_TYPE = "https://developer.nexmo.com/api-errors#unprocessable-entity"
SERVER_ERROR_TYPE = "https://developer.nexmo.com/api-errors#internal-server-error"
NOT_ACCEPTABLE_TYPE = "https://developer.nexmo.com/api-errors#accept-header"
UNSUPPORTED_MEDIA_TYPE = "https://developer.nexmo.com/api-errors#content-type-header"
# External Accounts' 403Response: only a title.
WRONG_AUTH_TITLE = "Wrong authentication - You are not authorised to access this resource"

# Application names as people type them in the dashboard, hostile on purpose.
HOSTILE_APP_NAMES: tuple[str, ...] = (
    "payload-bot & Support",
    'Sales = 100% "Leads" + more',
    "<script>alert(1)</script> #general",
    "🤖 Messenger Bot 🚀",
    "خدمة العملاء",
    "カスタマーサポート",
    "https://app.example/?a=1&b=%20",
    "A" * 79 + "é",  # 80 characters
)


def problem(status: int, title: str, detail: str | None = None, *, type: str | None = None, **extra: Any) -> Response:
    """A problem+json response; omitted members stay omitted, as Vonage does."""
    body: dict[str, Any] = {}
    if type is not None:
        body["type"] = type
    body["title"] = title
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return Response(status, body, {"Content-Type": PROBLEM})


def _invalid(params: list[dict[str, str]]) -> Response:
    return problem(
        400,
        "Your request parameters didn't validate.",
        f"Found errors validating {len(params)} of your submitted parameters.",
        type=INVALID_PARAMS_TYPE,
        instance=None,
        invalid_params=params,
    )


def problem_for(status: int, *, detail: str | None = None, retry_after: int | None = None) -> Response:
    """The problem body Vonage sends for ``status`` (and ``Retry-After`` on a 429)."""
    instance = str(uuid.uuid4())
    if status == 401:
        return problem(401, "Unauthorised", detail or "Request header 'Authorization' missing / Invalid Token")
    if status == 403:
        return problem(403, WRONG_AUTH_TITLE)
    if status == 404:
        return problem(
            404, "Not Found", detail or "The requested resource does not exist", type=NOT_FOUND_TYPE, instance=instance
        )
    if status == 405:
        return problem(405, "Request method not allowed", detail, type=WRONG_VERB_TYPE, instance=instance)
    if status == 406:
        return problem(
            406,
            "Invalid Accept header",
            detail or "Invalid Accept header provided. Must be application/json",
            type=NOT_ACCEPTABLE_TYPE,
            instance=instance,
        )
    if status == 409:
        return problem(409, "Application conflict", detail or "Unable to link application", type=CONFLICT_TYPE)
    if status == 415:
        return problem(
            415,
            "Invalid Content-Type header",
            detail or "Invalid Content-Type header provided. Must be application/json",
            type=UNSUPPORTED_MEDIA_TYPE,
            instance=instance,
        )
    if status == 422:
        return problem(
            422,
            "Invalid parameters",
            detail or "The request contains parameters that could not be processed.",
            type=UNPROCESSABLE_TYPE,
            instance=instance,
            invalid_params=[
                {"name": "access_token", "reason": "The access token could not be validated with Facebook"}
            ],
        )
    if status == 429:
        response = problem(
            429,
            "Rate Limit Hit",
            detail or "Please wait, then retry your request",
            type=THROTTLED_TYPE,
            instance=instance,
        )
        response.headers["Retry-After"] = str(1 if retry_after is None else retry_after)
        return response
    if status >= 500:
        return problem(
            status,
            "Internal Error",
            detail or "An error occurred. Please try again later.",
            type=SERVER_ERROR_TYPE,
            instance=instance,
        )
    return problem(status, "Bad Request", detail, instance=instance)


def not_found(path: str) -> Response:
    return problem(
        404, "Not Found", f"Resource '{path}' does not exist, or you do not have access", type=NOT_FOUND_TYPE
    )


def wrong_verb(method: str) -> Response:
    return problem(405, "Request method not allowed", f"Request method '{method}' not supported", type=WRONG_VERB_TYPE)


@dataclass
class AfterFault:
    """Apply the request for real, then answer ``status`` instead of the real response."""

    match: str
    times: int = 1
    status: int = 502
