"""/metrics counts distributed mode's authorize cache: a hit serves a workspace's install from
memory, a miss reads it from the database (bench/workspaces.py reads the hit ratio from here)."""

from __future__ import annotations

import re

from bot.fakes.slack_oauth import Installer
from tests.conftest import ENTERPRISE, Running
from tests.test_installations_mode import DISTRIBUTED, help_answer, walk_install


def cache_counts(bot: Running) -> dict[str, float]:
    text = bot.http.get(bot.url + "/metrics").text
    return {k: float(v) for k, v in re.findall(r'^fblink_authorize_cache_total\{result="(\w+)"\} (\S+)$', text, re.M)}


def test_metrics_count_the_authorize_caches_hits_and_misses(start_app, slack) -> None:  # type: ignore[no-untyped-def]
    slack.oauth.client_id, slack.oauth.client_secret = (
        DISTRIBUTED["slack_client_id"],
        DISTRIBUTED["slack_client_secret"],
    )
    bot = start_app(**DISTRIBUTED)
    assert cache_counts(bot) == {"hit": 0, "miss": 0, "refresh": 0}

    assert "not installed" in help_answer(bot, "T0NONE")["text"]  # a miss: nothing to cache
    slack.oauth.install_as(Installer(team_id="T0NEW", team_name="New Co", enterprise_id=ENTERPRISE, user_id="U0INS"))
    assert walk_install(bot)[0].status_code == 200
    slack.wait_message("Add a Vonage key")  # the installer's welcome DM read the install (by team alone): a miss
    for _ in range(3):  # the first reads the install, the next two find it in the cache
        assert "not installed" not in str(help_answer(bot, "T0NEW"))
    assert cache_counts(bot) == {"hit": 2, "miss": 3, "refresh": 0}


def test_single_workspace_mode_has_no_authorize_cache(bot: Running) -> None:
    help_answer(bot, "T0001")
    assert cache_counts(bot) == {}
    assert "fblink_slack_requests_total" in bot.http.get(bot.url + "/metrics").text
