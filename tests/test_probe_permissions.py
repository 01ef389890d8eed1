"""Issue 21 item 1, the daily probe's part: a link whose linker later removed ``pages_messaging``
in Facebook's settings shows as broken once the probe ran, without anyone logging in again."""

from __future__ import annotations

import pytest

from tests.conftest import START, TEAM
from tests.flows import log_in, text_of
from tests.sweep_helpers import DAY, run_sweep

PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]


@pytest.fixture
def linked(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101", channel="CLINK")
    bot.slack.wait_response("Linked *Acme Coffee*")
    return bot


def status_text(bot) -> str:
    bot.slack.responses.clear()
    r = bot.command("status")
    return text_of(r.json()) if r.content else text_of(bot.slack.wait_response("Acme Coffee"))


def test_a_permission_removed_after_linking_shows_the_link_broken_after_the_probe(linked, graph):
    bot = linked
    assert "broken" not in status_text(bot)
    graph.remove_permissions("FB1", "pages_messaging")
    assert "broken" not in status_text(bot)  # nothing has asked Facebook yet
    graph.reset_log()
    run_sweep(bot, START + 2 * DAY, probe=True)
    # the probe read it from the token it checks anyway: no other call to Facebook
    assert {c.path for c in graph.calls()} == {"/v25.0/debug_token"}
    shown = status_text(bot)
    assert "*broken*: the Facebook login it was made with no longer grants `pages_messaging`" in shown
    assert "pages_messaging" not in bot.store.get_login(TEAM, "U1").scopes


def test_a_probe_of_another_facebook_accounts_token_leaves_the_login_alone(linked, graph):
    """U1 linked with FB1, then logged in as FB2: FB1's Page token speaks for FB1, not for U1's login now."""
    bot = linked
    graph.add_user("FB2", "Bea", pages=PAGES)
    log_in(bot, graph, fb_user="FB2", name="Bea")
    before = bot.store.get_login(TEAM, "U1").scopes
    graph.remove_permissions("FB1", "pages_messaging")
    run_sweep(bot, START + 2 * DAY, probe=True)
    assert bot.store.get_login(TEAM, "U1").scopes == before
