"""fblink as an operator runs it: `fblink serve --role web` and `fblink worker` in real processes,
configured through the environment, talking to the test's fakes; requests signed as Slack signs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.fakes import slack_payloads as sp
from bot.settings import Settings
from tests.conftest import ENTERPRISE, SIGNING_SECRET, TEAM, free_port


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FACEBOOK_", "VONAGE_", "FBLINK_"))}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[name.upper()] = str(value)
    return env


@dataclass
class Process:
    """One fblink process on its own port; stderr (its log) is read once it has exited."""

    proc: subprocess.Popen[str]
    url: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    err: str = ""

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(self.url + path, **kw)

    def command(self, text: str, *, user: str = "U1", channel: str = "C1", response_url: str = "") -> httpx.Response:
        """A signed `/fblink` slash command, as Slack sends it."""
        body = sp.slash_command(
            text=text,
            team_id=TEAM,
            user_id=user,
            channel_id=channel,
            enterprise_id=ENTERPRISE,
            trigger_id=f"{time.time_ns()}.1.abc",
            response_url=response_url or "http://127.0.0.1:9/unused",
        )
        raw = sp.form_body(body)
        headers = sp.signed_headers(raw, SIGNING_SECRET, str(int(time.time())))
        return self.http.post(self.url + "/slack/events", content=raw, headers=headers)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait; returns the exit code (the log is in ``err``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        _, self.err = self.proc.communicate(timeout=timeout)
        self.http.close()
        return self.proc.returncode


def start(settings: Settings, *args: str) -> Process:
    """`fblink <args> --host 127.0.0.1 --port <free>`; returns once /healthz answers."""
    port = free_port()
    env = cli_env(settings)
    env["FBLINK_LOG_FORMAT"] = "plain"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Process(proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while True:
        try:
            running.get("/healthz", timeout=1)
            return running
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"fblink {' '.join(args)} did not start: {proc.communicate()[1]}") from None
            time.sleep(0.05)


def metric(text: str, name: str) -> float:
    """One sample's value from Prometheus text (0 when absent: a counter never incremented)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
