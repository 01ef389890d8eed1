"""The Application API v2 half of the fake Vonage (``/v2/applications``), per API key.

Shapes follow /work/shared/specs/vonage/application.v2.yml: the collection pages with
``page``/``page_size`` (default 10, 1..100) and carries ``total_items``,
``total_pages``, ``_embedded.applications`` and ``_links``; a validation error names
its list ``invalid_parameters``.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from typing import Any
from urllib.parse import urlencode

from bot.fakes.base import Request, Response
from bot.fakes.vonage_errors import HOSTILE_APP_NAMES, NOT_FOUND_TYPE, problem

APPS_PREFIX = "/v2/applications"


class ApplicationsMixin:
    """Applications of each API key; mixed into FakeVonage, which provides ``lock`` and ``url``."""

    applications: dict[str, dict[str, dict[str, Any]]]
    apps_page_size_default: int
    lock: threading.RLock
    url: str

    def add_application(
        self, api_key: str, app_id: str, name: str, capabilities: tuple[str, ...] | list[str] = ("messages",)
    ) -> dict[str, Any]:
        caps: dict[str, Any] = {}
        for cap in capabilities:
            if cap == "messages":
                caps[cap] = {
                    "webhooks": {
                        "inbound_url": {"address": "https://example.com/webhooks/inbound", "http_method": "POST"},
                        "status_url": {"address": "https://example.com/webhooks/status", "http_method": "POST"},
                    }
                }
            elif cap == "vbc":
                caps[cap] = {}
            else:
                caps[cap] = {
                    "webhooks": {"event_url": {"address": "https://example.com/webhooks/event", "http_method": "POST"}}
                }
        app = {"id": app_id, "name": name, "capabilities": caps}
        with self.lock:
            self.applications.setdefault(api_key, {})[app_id] = app
        return app

    def add_hostile_applications(self, api_key: str, count: int = len(HOSTILE_APP_NAMES)) -> list[dict[str, Any]]:
        """Messages applications whose names carry ``payload``, ``&``, quotes, emoji, RTL, 80 chars."""
        return [
            self.add_application(api_key, str(uuid.UUID(int=i + 1)), HOSTILE_APP_NAMES[i % len(HOSTILE_APP_NAMES)])
            for i in range(count)
        ]

    def _list_apps(self, req: Request, api_key: str) -> Response:
        page = int_param(req.query.get("page"), 1)
        page_size = int_param(req.query.get("page_size"), self.apps_page_size_default)
        bad = []
        if page_size is None or not 1 <= page_size <= 100:
            bad.append({"name": "page_size", "reason": "must be between 1 and 100"})
        if page is None or page < 1:
            bad.append({"name": "page", "reason": "must be greater than 0"})
        if bad:
            return problem(
                400,
                "Bad Request",
                "The request failed due to validation errors",
                type="https://developer.nexmo.com/api-errors/application#list-validation",
                invalid_parameters=bad,
                instance=uuid.uuid4().hex,
            )
        assert page is not None and page_size is not None
        apps = list(self.applications.get(api_key, {}).values())
        total_pages = math.ceil(len(apps) / page_size)
        chunk = apps[(page - 1) * page_size : page * page_size]

        def href(n: int) -> dict[str, str]:
            return {"href": f"{self.url}{APPS_PREFIX}?{urlencode({'page_size': page_size, 'page': n})}"}

        links = {"self": href(page), "first": href(1), "last": href(max(1, total_pages))}
        if page > 1:
            links["prev"] = href(page - 1)
        if page < total_pages:
            links["next"] = href(page + 1)
        return Response(
            200,
            {
                "page_size": page_size,
                "page": page,
                "total_items": len(apps),
                "total_pages": total_pages,
                "_embedded": {"applications": [self._app_json(a) for a in chunk]},
                "_links": links,
            },
        )

    def _get_app(self, api_key: str, app_id: str) -> Response:
        app = self.applications.get(api_key, {}).get(app_id)
        if app is None:
            return problem(
                404,
                "Not Found",
                f"ID '{app_id}' does not exist, or you do not have access",
                type=NOT_FOUND_TYPE,
                instance=uuid.uuid4().hex,
            )
        return Response(200, self._app_json(app))

    def _app_json(self, app: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": app["id"],
            "name": app["name"],
            "capabilities": json.loads(json.dumps(app["capabilities"])),
            "keys": {"public_key": "-----BEGIN PUBLIC KEY-----\nFAKE\n-----END PUBLIC KEY-----\n"},
            "privacy": {"improve_ai": False},
            "_links": {"self": {"href": f"{APPS_PREFIX}/{app['id']}"}},
        }


def int_param(value: str | None, default: int) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return None
