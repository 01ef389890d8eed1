"""The operators' files in deploy/ stay true to fblink: the systemd units start commands fblink
accepts, in the right role, and give a draining process more time than its grace; the
environment example names only settings fblink reads, and every one it requires; nginx
accepts the upstream block as bench/replicas.py runs it."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def unit(name: str) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in (DEPLOY / name).read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


def replicas_bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("replicas", DEPLOY.parent / "bench" / "replicas.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["replicas"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("name", "role"), [("fblink-web@.service", "web"), ("fblink-worker@.service", "worker")])
def test_each_unit_starts_its_role_and_outlasts_its_grace(name: str, role: str) -> None:
    fields = unit(name)
    argv = shlex.split(fields["ExecStart"].replace("%i", "8001"))
    assert Path(argv[0]).name == "fblink"
    args = build_parser().parse_args(argv[1:])
    assert args.role == role and args.host == "127.0.0.1" and args.port == 8001
    assert float(fields["TimeoutStopSec"]) > args.grace  # systemd never SIGKILLs a process still draining
    assert fields["KillSignal"] == "SIGTERM" and fields["EnvironmentFile"] == "/etc/fblink/fblink.env"
    assert replicas_bench().exec_start(DEPLOY / name, 8001)[3:] == argv[1:]  # the bench runs this very line


def test_the_environment_example_names_settings_fblink_reads_and_every_required_one() -> None:
    keys = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "fblink.env.example").read_text().splitlines()
        if re.match(r"^[A-Z_]+=", line)
    ]
    fields = {name.upper(): info for name, info in Settings.model_fields.items()}
    assert sorted(set(keys) - set(fields)) == []
    required = {name for name, info in fields.items() if info.is_required()}
    assert sorted(required - set(keys)) == []
    assert len(keys) == len(set(keys))


def test_nginx_accepts_the_upstream_as_the_bench_runs_it(tmp_path: Path) -> None:
    if shutil.which("nginx") is None:
        why = "Debian's nginx is not installed (apt-get install -y nginx); bench/replicas.py needs it"
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)  # .ci/run installs it
        pytest.skip(why)
    conf = replicas_bench().nginx_conf(tmp_path, 18080, [18001, 18002])
    site = (tmp_path / "fblink.conf").read_text()
    assert "server 127.0.0.1:18001" in site and "server 127.0.0.1:18002" in site
    directives = [line.split("#")[0] for line in site.splitlines()]
    assert not any("keepalive" in d for d in directives)  # a draining replica's idle connection would cost a 502
    out = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "test is successful" in out.stderr


def test_the_cpu_drop_ins_keep_web_and_workers_apart_and_the_bench_reads_them() -> None:
    """deploy/cpus/ gives the web replicas and the workers cores of their own on one host;
    bench/replicas.py pins its processes from these very lines."""
    bench = replicas_bench()
    web, worker = (bench.cpu_affinity(DEPLOY / "cpus" / f"fblink-{role}.conf") for role in ("web", "worker"))
    assert web and worker and not web & worker
    for role in ("web", "worker"):
        text = (DEPLOY / "cpus" / f"fblink-{role}.conf").read_text()
        assert "[Service]" in text and f"/etc/systemd/system/fblink-{role}@.service.d/" in text
    assert bench.cpu_affinity_of("CPUAffinity=0-1 3") == {0, 1, 3}  # systemd's ranges and lists
