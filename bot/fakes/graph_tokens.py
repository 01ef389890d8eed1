"""The token side of the fake Graph: minting, checking and killing tokens, appsecret_proof,
and Graph's error bodies. Split from :mod:`bot.fakes.graph` (the endpoints) to keep both small."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from bot.fakes.base import FakeServer, Response
from bot.fakes.graph_data import DEAD_MESSAGES, FakeToken, error_response


class _Problem(Exception):
    """Internal: abort a handler with a Graph error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class TokenAuthority(FakeServer):
    """Issues and checks the fake's tokens; the Meta app's id, secret and "Require App Secret"."""

    def __init__(self, app_id: str, app_secret: str, *, require_appsecret_proof: bool = True) -> None:
        super().__init__()
        self.app_id = app_id
        self.app_secret = app_secret
        # The Meta app's "Require App Secret": user-token calls without appsecret_proof fail.
        self.require_appsecret_proof = require_appsecret_proof
        self.clock: Callable[[], float] = time.time  # tests may move time forward
        self.tokens: dict[str, FakeToken] = {}

    def appsecret_proof(self, token: str) -> str:
        return hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()

    def _authorize(self, params: dict[str, str]) -> FakeToken:
        """The live token of a user-context call, with appsecret_proof checked."""
        if not params.get("access_token"):
            raise _Problem(
                self._error(
                    400, "An active access token must be used to query information about the current user.", 2500
                )
            )
        token = self._live_token(params["access_token"])
        proof = params.get("appsecret_proof")
        if proof is None and token.kind == "USER" and self.require_appsecret_proof:
            raise _Problem(
                self._error(
                    400,
                    "API calls from the server require an appsecret_proof argument",
                    100,
                    type="GraphMethodException",
                )
            )
        if proof is not None and not hmac.compare_digest(proof, self.appsecret_proof(token.value)):
            raise _Problem(
                self._error(
                    400, "Invalid appsecret_proof provided in the API argument", 100, type="GraphMethodException"
                )
            )
        return token

    def _live_token(self, value: str | None) -> FakeToken:
        token = self.tokens.get(value or "")
        if token is None:
            raise _Problem(self._error(400, "Invalid OAuth access token - Cannot parse access token", 190))
        subcode = self._dead_subcode(token)
        if subcode is not None:
            raise _Problem(self._error(400, self._dead_message(subcode), 190, subcode=subcode))
        return token

    def _dead_subcode(self, token: FakeToken) -> int | None:
        if token.dead_subcode is not None:
            return token.dead_subcode
        if token.expires_at and token.expires_at <= self._now():
            return 463
        return None

    def _dead_message(self, subcode: int) -> str:
        template = DEAD_MESSAGES.get(subcode, "Error validating access token: The session is invalid.")
        return template.format(app_id=self.app_id)

    def _mint(self, kind: str, user_id: str, *, lifetime: int, page_id: str | None = None) -> FakeToken:
        now = self._now()
        value = "EAAtest" + secrets.token_hex(8)  # short on purpose: must not look like a real token
        token = FakeToken(value, kind, user_id, page_id, now, now + lifetime if lifetime else 0)
        self.tokens[value] = token
        return token

    def _now(self) -> int:
        return int(self.clock())

    def _error(
        self, status: int, message: str, code: int, *, subcode: int | None = None, type: str = "OAuthException"
    ) -> Response:
        return error_response(status, message, code, subcode=subcode, type=type)
