"""Issue 19: a worker claims a big sweep in rounds (bot.reminders.ROUND claims at a time), so a
second worker that starts meanwhile finds due rows left to claim instead of an empty sweep."""

from __future__ import annotations

import re
import threading
from typing import Any

from bot.fakes.slack import FakeSlack
from bot.reminders import CLAIM_BATCH, ROUND
from tests.conftest import START
from tests.sweep_helpers import run_sweep, seed


def test_a_big_sweep_holds_one_round_of_claims_at_a_time_and_posts_every_reminder_once(bot, slack: FakeSlack):
    n = 2 * ROUND + 200
    seed(bot, n, channel="CBULK")
    first_post = threading.Event()
    held = slack.fail("POST /api/chat.postMessage", accept=True, hold=first_post)
    out: dict[str, Any] = {}
    sweeping = threading.Thread(target=lambda: out.update(report=run_sweep(bot, START)[0]))
    sweeping.start()
    try:
        slack.wait_for(lambda: slack.messages, timeout=60)  # the first digest is with Slack, its answer held
        (claimed,) = bot.store.select("SELECT COUNT(*) AS n FROM reminders WHERE status = 'claimed'")
        (left,) = bot.store.select("SELECT COUNT(*) AS n FROM links WHERE next_due_at <= ?", [START])
    finally:
        first_post.set()
        sweeping.join(120)
    assert held.times == 0
    assert ROUND <= claimed["n"] < ROUND + CLAIM_BATCH  # one round held ...
    assert left["n"] == n - claimed["n"]  # ... and the rest still due, for any worker to claim
    statuses = bot.store.select("SELECT status, COUNT(*) AS n FROM reminders GROUP BY status")
    assert statuses == [{"status": "posted", "n": n}]
    posts = [m for m in slack.messages if m["method"] == "chat.postMessage"]
    pages = [int(p) for m in posts for p in re.findall(r"Shop 7(\d{5})", str(m["blocks"]))]
    assert sorted(pages) == list(range(n))  # every reminder once, in digests (one channel)
    assert all(line.startswith("posted digest of") for line in out["report"])
