"""manifest.yml and manifest.distributed.yml: valid per Slack's manifest JSON schema, and wired
the way fblink runs (the second differs from the first only where distribution needs it).

The schema lives outside the repo, in ``shared/`` beside the repository root
(``<repo>/../shared/specs/slack/manifest.schema.1.0.0.json``). Schema tests skip
when it is absent; the fblink-specific checks run regardless.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema.validators import validator_for

from bot.fakes import slack_events
from bot.fakes import slack_payloads as sp
from bot.fakes.slack_oauth import Installer
from bot.oauth import BOT_SCOPES, REDIRECT_PATH
from handlers.commands import SUBCOMMANDS
from tests.conftest import Running
from tests.test_installations_mode import DISTRIBUTED, walk_install

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_PATH = REPO_ROOT / "manifest.yml"
DISTRIBUTED_PATH = REPO_ROOT / "manifest.distributed.yml"
SCHEMA_PATH = REPO_ROOT.parent / "shared" / "specs" / "slack" / "manifest.schema.1.0.0.json"

EVENTS_PATH = "/slack/events"

# Every scope the bot token needs for the Web API calls fblink makes.
REQUIRED_BOT_SCOPES = {
    "commands": "the /fblink slash command",
    "chat:write": "chat.postMessage / chat.update (reminders, DMs)",
    "im:write": "conversations.open (DM a user)",
    "users:read": "users.info",
    "channels:read": "conversations.info on public channels",
    "groups:read": "conversations.info on private channels",
    "channels:history": "conversations.history: a takeover looks for a reminder already posted",
    "groups:history": "conversations.history in private channels",
}


def _load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), f"{path.name} must be a YAML mapping"
    return data


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return _load_manifest()


@pytest.fixture(scope="module")
def distributed() -> dict[str, Any]:
    return _load_manifest(DISTRIBUTED_PATH)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"Slack manifest schema not found at {SCHEMA_PATH}")
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]):
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _errors(validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


# --- schema ------------------------------------------------------------------


def test_validator_class_matches_schema_draft(schema: dict[str, Any], validator) -> None:
    # validator_for falls back to the newest draft for an unknown $schema; make
    # sure the schema's declared draft was actually recognised.
    declared = schema["$schema"].rstrip("#")
    assert validator.META_SCHEMA["$schema"].rstrip("#") == declared or (
        validator.META_SCHEMA.get("$id", "").rstrip("#") == declared
    ), f"{type(validator).__name__} does not implement {schema['$schema']}"


def test_manifest_matches_slack_schema(manifest: dict[str, Any], validator) -> None:
    errors = _errors(validator, manifest)
    assert not errors, "manifest.yml violates Slack's schema:\n" + "\n".join(errors)


def test_distributed_manifest_matches_slack_schema(distributed: dict[str, Any], validator) -> None:
    errors = _errors(validator, distributed)
    assert not errors, "manifest.distributed.yml violates Slack's schema:\n" + "\n".join(errors)


def _drop_name(m: dict[str, Any]) -> None:
    m["display_information"].pop("name", None)


def _drop_display_information(m: dict[str, Any]) -> None:
    del m["display_information"]


def _string_boolean(m: dict[str, Any]) -> None:
    m["settings"]["socket_mode_enabled"] = "no"


def _unknown_top_level_key(m: dict[str, Any]) -> None:
    m["feature"] = {}  # typo for "features"


def _command_without_slash(m: dict[str, Any]) -> None:
    m["features"]["slash_commands"][0]["command"] = "fblink"


def _interactivity_without_is_enabled(m: dict[str, Any]) -> None:
    del m["settings"]["interactivity"]["is_enabled"]


def _relative_request_url(m: dict[str, Any]) -> None:
    m["settings"]["event_subscriptions"]["request_url"] = "/slack/events"


def _name_too_long(m: dict[str, Any]) -> None:
    m["display_information"]["name"] = "f" * 36


@pytest.mark.parametrize(
    "breakage",
    [
        _drop_name,
        _drop_display_information,
        _string_boolean,
        _unknown_top_level_key,
        _command_without_slash,
        _interactivity_without_is_enabled,
        _relative_request_url,
        _name_too_long,
    ],
)
def test_validator_rejects_broken_manifest(manifest: dict[str, Any], validator, breakage) -> None:
    broken = copy.deepcopy(manifest)
    breakage(broken)
    assert _errors(validator, broken), f"schema accepted a manifest broken by {breakage.__name__}"


def test_missing_name_is_reported_as_required(manifest: dict[str, Any], validator) -> None:
    broken = copy.deepcopy(manifest)
    _drop_name(broken)
    errors = list(validator.iter_errors(broken))
    assert any(e.validator == "required" and "'name'" in e.message for e in errors), errors


# --- fblink wiring (independent of the schema) ----------------------------------


def _request_urls(m: dict[str, Any]) -> dict[str, str]:
    (command,) = [c for c in m["features"]["slash_commands"] if c["command"] == "/fblink"]
    return {
        "slash command /fblink": command["url"],
        "event_subscriptions": m["settings"]["event_subscriptions"]["request_url"],
        "interactivity": m["settings"]["interactivity"]["request_url"],
    }


def test_metadata_targets_schema_v1(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"]["major_version"] == 1


def test_display_information(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert info["name"] == "fblink"
    assert info.get("description")
    # The schema spells this constraint with a non-standard "regex" keyword that
    # jsonschema ignores, so check it here.
    assert re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", info["background_color"])


def test_fblink_slash_command(manifest: dict[str, Any]) -> None:
    commands = [c for c in manifest["features"]["slash_commands"] if c["command"] == "/fblink"]
    assert len(commands) == 1, "exactly one /fblink command expected"
    command = commands[0]
    assert command["url"].endswith(EVENTS_PATH)
    assert command.get("description")
    assert command["should_escape"] is True  # remind #channel needs channel ids
    # The usage hint lists exactly the registry's subcommands, in its order.
    hint = [w.strip() for w in command.get("usage_hint", "").split("|")]
    assert hint == list(SUBCOMMANDS), "manifest.yml usage_hint differs from handlers.commands.SUBCOMMANDS"


def test_readme_lists_every_subcommand_usage_from_the_registry() -> None:
    """The README's command list is the registry's: every usage line, and no other subcommand."""
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("<!-- commands -->")
    listed = readme[start : readme.index("<!-- /commands -->")]
    for sub in SUBCOMMANDS.values():
        for usage, _ in sub.usage:
            assert f"`/fblink {usage}`" in listed, f"README lacks `/fblink {usage}`"
    named = set(re.findall(r"`/fblink (\w+)", listed))
    assert named == set(SUBCOMMANDS), named ^ set(SUBCOMMANDS)


def test_request_urls_point_at_one_https_endpoint(manifest: dict[str, Any]) -> None:
    urls = _request_urls(manifest)
    for where, url in urls.items():
        parts = urlsplit(url)
        assert parts.scheme == "https", f"{where}: Slack needs an https URL, got {url!r}"
        assert parts.path == EVENTS_PATH, f"{where}: expected path {EVENTS_PATH}, got {url!r}"
        assert url.endswith(EVENTS_PATH)
    hosts = {urlsplit(u).netloc for u in urls.values()}
    assert len(hosts) == 1, f"request URLs use different hosts: {sorted(hosts)}"


def test_interactivity_enabled(manifest: dict[str, Any]) -> None:
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    assert interactivity["request_url"].endswith(EVENTS_PATH)


def test_events(manifest: dict[str, Any]) -> None:
    events = manifest["settings"]["event_subscriptions"]
    assert events["request_url"].endswith(EVENTS_PATH)
    assert "app_home_opened" in events["bot_events"]


def test_app_home(manifest: dict[str, Any]) -> None:
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True
    assert home["messages_tab_enabled"] is True


def test_bot_user(manifest: dict[str, Any]) -> None:
    assert manifest["features"]["bot_user"]["display_name"] == "fblink"


def test_settings_flags(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    # `is False`, not falsy: YAML 1.1 turns a bare `no`/`off` into a boolean,
    # but a quoted "false" would be a (truthy) string.
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_bot_scopes_cover_web_api_calls(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes)), f"duplicate scopes: {scopes}"
    missing = {s: why for s, why in REQUIRED_BOT_SCOPES.items() if s not in scopes}
    assert not missing, f"bot scopes missing: {missing}"
    if "chat:write.public" in scopes:
        # Slack: chat:write.public only works together with chat:write.
        assert "chat:write" in scopes
    # A single-workspace bot-token app asks for no user-token scopes.
    assert not manifest["oauth_config"]["scopes"].get("user")


# --- manifest.distributed.yml: what distribution adds ------------------------------

DISTRIBUTED_EVENTS = {
    "app_home_opened",
    "app_uninstalled",
    "tokens_revoked",
    "team_access_revoked",
    "team_access_granted",
}


def _without_distribution(m: dict[str, Any]) -> dict[str, Any]:
    """The manifest minus the keys the two manifests may set differently."""
    out = copy.deepcopy(m)
    out["oauth_config"].pop("redirect_urls", None)
    for key in ("org_deploy_enabled", "token_rotation_enabled"):
        out["settings"].pop(key, None)
    out["settings"]["event_subscriptions"].pop("bot_events", None)
    return out


def test_the_two_manifests_differ_only_where_distribution_needs_it(
    manifest: dict[str, Any], distributed: dict[str, Any]
) -> None:
    """A command, scope or URL changed in one manifest and not in the other fails here."""
    assert _without_distribution(distributed) == _without_distribution(manifest)
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) < set(
        distributed["settings"]["event_subscriptions"]["bot_events"]
    )


def test_distributed_bot_scopes_are_those_the_install_asks_for(distributed: dict[str, Any]) -> None:
    scopes = distributed["oauth_config"]["scopes"]
    assert sorted(scopes["bot"]) == sorted(BOT_SCOPES)
    assert not scopes.get("user")  # the install asks for no user token


def test_distributed_redirect_url_is_fblinks_oauth_redirect(distributed: dict[str, Any]) -> None:
    (url,) = distributed["oauth_config"]["redirect_urls"]
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.path == REDIRECT_PATH and not parts.query
    assert {parts.netloc} == {urlsplit(u).netloc for u in _request_urls(distributed).values()}


def test_distributed_settings(distributed: dict[str, Any]) -> None:
    settings = distributed["settings"]
    assert settings["token_rotation_enabled"] is True  # fblink refreshes every install's bot token
    assert settings["org_deploy_enabled"] is True  # Enterprise Grid org-wide installs
    assert settings["socket_mode_enabled"] is False  # installs and OAuth redirects come over HTTP
    assert set(settings["event_subscriptions"]["bot_events"]) == DISTRIBUTED_EVENTS


ORG = "E0EVT"


def _event(kind: str, team_id: str) -> dict[str, Any]:
    """The Events API envelope around one of the events the manifests subscribe to (the fakes'
    builders, from Slack's docs): the team_access events go to an org-wide install."""
    if kind == "app_home_opened":
        return slack_events.app_home_opened(user_id="U0INS", channel_id="D0INS", team_id=team_id)
    if kind == "app_uninstalled":
        return slack_events.app_uninstalled(team_id=team_id)
    if kind == "tokens_revoked":
        return slack_events.tokens_revoked(team_id=team_id, bot=[sp.BOT_USER])
    return slack_events.team_access(kind.removeprefix("team_access_"), enterprise_id=ORG, team_ids=[team_id])


@pytest.mark.parametrize("kind", sorted(DISTRIBUTED_EVENTS))
def test_every_event_a_manifest_subscribes_to_is_handled(start_app, slack, kind: str) -> None:  # type: ignore[no-untyped-def]
    """Signed, from an installed workspace: Bolt answers an event no listener takes with 404."""
    slack.oauth.client_id, slack.oauth.client_secret = (
        DISTRIBUTED["slack_client_id"],
        DISTRIBUTED["slack_client_secret"],
    )
    bot: Running = start_app(**DISTRIBUTED)
    org = kind.startswith("team_access_")
    installer = Installer(team_id=None if org else "T0EVT", enterprise_id=ORG if org else None, org_install=org)
    slack.oauth.install_as(installer)
    assert walk_install(bot)[0].status_code == 200
    answer = bot.post_signed(json.dumps(_event(kind, "T0EVT")).encode(), "application/json")
    assert answer.status_code == 200, f"{kind}: {answer.status_code} {answer.text}"
