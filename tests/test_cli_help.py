"""Issue 21 item 16: the CLI explains itself: commands one line each (demo first), a version, and
every --help with its defaults and where settings come from."""

from __future__ import annotations

import subprocess
import sys


def fblink(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=60)


def test_fblink_alone_lists_the_commands_demo_first():
    out = fblink()
    assert out.returncode == 0, out.stderr
    lines = [ln.strip() for ln in out.stdout.splitlines()]
    commands = [
        ln.split()[0]
        for ln in lines
        if ln.split()
        and ln.split()[0] in {"demo", "serve", "check-config", "gen-key", "migrate", "sweep", "copy-db", "rotate-keys"}
    ]
    assert commands[0] == "demo" and len(commands) == 8
    for line in lines:
        if line.split() and line.split()[0] in commands:
            assert len(line.split()) > 1, f"{line!r}: its description should be on the same line"
    assert ".env" in out.stdout


def test_version_and_help_with_defaults():
    version = fblink("--version")
    assert version.returncode == 0 and version.stdout.startswith("fblink ")
    serve = fblink("serve", "--help").stdout
    assert "(default: 3000)" in serve and "(default: 0.0.0.0)" in serve and ".env" in serve
    demo = fblink("demo", "--help").stdout
    assert "(default: 127.0.0.1)" in demo and "(default: None)" not in demo
    assert "(default: 500)" in fblink("rotate-keys", "--help").stdout
