"""`fblink serve | worker | sweep | demo | migrate | copy-db | rotate-keys | gen-key | check-config`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib import metadata

from bot.app import create_app
from bot.clock import Clock, FixedClock
from bot.crypto import Vault, generate_key
from bot.db_marks import WrongDatabase, claim_for_real
from bot.dbtools import CopyRefused, copy_db, migrate, rotate, schema_problem
from bot.demo.run import main as run_demo
from bot.logs import setup_logging
from bot.reminders import run_sweep_once
from bot.serving import serve as serve_role
from bot.settings import Settings, SettingsError, load_settings
from bot.store import StoreError, engine_for


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"fblink: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _real_database(settings: Settings, command: str) -> None:
    """A real command never uses the demo's database (bot.db_marks); exit 2 saying why. The demo
    runs on SQLite only, so a PostgreSQL install has nothing to check."""
    if settings.fblink_database_url:
        return
    try:
        claim_for_real(settings.fblink_database, command)
    except WrongDatabase as exc:
        print(f"fblink: refusing the database: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """`fblink serve [--role web]` and `fblink worker`: one process of a role, drained on SIGTERM."""
    settings = _settings_or_exit()
    _real_database(settings, args.command)
    setup_logging(settings.fblink_log_format, settings.fblink_log_level)
    if problem := _database_problem(settings):
        print(f"fblink: {problem}", file=sys.stderr)
        return 2
    app = create_app(settings, role=args.role)
    serve_role(app, host=args.host, port=args.port, grace=args.grace, drain_delay=args.drain_delay)
    return 0


def _database_problem(settings: Settings) -> str | None:
    try:
        return asyncio.run(schema_problem(engine_for(settings)))
    except StoreError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot open the database: {exc}"
    except Exception as exc:  # the driver's own errors (refused connection, bad password) name no secret
        return f"cannot open the database: {type(exc).__name__}: {exc}"


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending schema migrations (safe to run from several replicas at once)."""
    settings = _settings_or_exit()
    _real_database(settings, "migrate")
    engine = engine_for(settings)
    done = asyncio.run(migrate(engine))
    print(
        f"applied {len(done)} migration(s) to {engine.url}" + (f": {', '.join(done)}" if done else "; schema current")
    )
    return 0


def cmd_copy_db(args: argparse.Namespace) -> int:
    """Copy an install into another database (SQLite to PostgreSQL), then verify it."""
    settings = _settings_or_exit()
    source, target = engine_for(settings, args.source), engine_for(settings, args.target)
    try:
        report = asyncio.run(copy_db(source, target, Vault(settings.fblink_secret_key), progress=print))
    except CopyRefused as exc:
        print(f"fblink: {exc}", file=sys.stderr)
        return 2
    total = sum(report.rows.values())
    print(f"copied {total} row(s) in {len(report.rows)} table(s) from {source.url} to {target.url}; row counts match")
    if report.undecryptable:
        print(f"{len(report.undecryptable)} encrypted value(s) do not decrypt with FBLINK_SECRET_KEY:", file=sys.stderr)
        for ident in report.undecryptable[:50]:
            print(f"  {ident}", file=sys.stderr)
        return 1
    print("every encrypted value decrypts with FBLINK_SECRET_KEY")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:

    settings = _settings_or_exit()
    _real_database(settings, "sweep")
    setup_logging(settings.fblink_log_format, settings.fblink_log_level)
    clock = FixedClock(args.now) if args.now else Clock()
    report = asyncio.run(run_sweep_once(settings, clock, probe=not args.no_probe))
    for line in report:
        print(line)
    if not report:
        print("nothing due")
    return 0


def cmd_gen_key(args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Every missing or malformed variable at once (start-up stops at the first)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"fblink: configuration error: {len(exc.problems)} problem(s)", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    mode = "Socket Mode" if settings.socket_mode else "HTTP"
    if settings.distributed:
        mode += "; distributed: each workspace adds its own Vonage keys, admins and reminder channel"
    print(f"configuration ok ({mode}; database {engine_for(settings).url})")
    for name in settings.ignored:
        print(f"  {name} is ignored in distributed mode: every workspace sets its own (see `/fblink help`)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:

    return run_demo(args.host, args.port, args.database)


def _batch_size(value: str) -> int:
    n = int(value)
    if not 1 <= n <= 10_000:
        raise argparse.ArgumentTypeError("must be between 1 and 10000")
    return n


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    """Re-encrypt stored secrets with the newest key; exit 1 if any row could not be decrypted."""

    settings = _settings_or_exit()
    if not settings.fblink_database_url and not os.path.exists(settings.fblink_database):
        print(f"fblink: no database at FBLINK_DATABASE ({settings.fblink_database})", file=sys.stderr)
        return 2
    _real_database(settings, "rotate-keys")
    vault = Vault(settings.fblink_secret_key)
    try:
        reports = asyncio.run(
            rotate(engine_for(settings), vault, batch=args.batch, progress=lambda r: print(r.line(), flush=True))
        )
    except StoreError as exc:
        print(f"fblink: {exc}", file=sys.stderr)
        return 2
    bad = sum(len(r.undecryptable) for r in reports)
    busy = sum(len(r.busy) for r in reports)
    print(
        f"rotated {sum(r.rewritten for r in reports)} secret(s) to the newest of {vault.key_count} key(s); "
        f"{bad} undecryptable, {busy} to retry"
    )
    return 1 if bad or busy else 0


SETTINGS_NOTE = (
    "Settings come from environment variables or a .env file in the working directory "
    "(README: Configure); `fblink check-config` checks them."
)


class _Help(argparse.HelpFormatter):
    """Each command on one line, and every option's default said (when it has one)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=24, width=110)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        self._action_max_length = max(self._action_max_length, 20)  # room for "    check-config" on its line

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _version() -> str:
    try:
        return metadata.version("fblink")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _seconds(value: str) -> float:
    n = float(value)
    if not 0 <= n <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return n


def _drain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grace",
        type=_seconds,
        default=10.0,
        help="seconds from SIGTERM to exit: requests in flight and tracked tasks finish within them (default 10)",
    )
    parser.add_argument(
        "--drain-delay",
        type=_seconds,
        default=0.0,
        help="seconds /readyz answers 503 before the listener closes, for a load balancer that polls it (default 0)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fblink",
        description="Link Facebook Pages to Vonage from Slack.",
        epilog=SETTINGS_NOTE,
        formatter_class=_Help,
    )
    parser.add_argument("--version", action="version", version=f"fblink {_version()}")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="<command>")

    def add(name: str, text: str, epilog: str = SETTINGS_NOTE) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, epilog=epilog, formatter_class=_Help)

    demo = add(
        "demo",
        "try fblink in a browser against simulated Slack, Facebook and Vonage",
        "The demo needs no settings and ignores real ones in the environment or .env.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    demo.add_argument("--port", type=int, default=8765, help="port to listen on")
    demo.add_argument("--database", help="keep the demo's state in this file (default: a fresh temporary file)")
    demo.set_defaults(func=cmd_demo)
    serve = add("serve", "run the bot (HTTP server, Slack listeners, scheduler)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on")
    serve.add_argument("--port", type=int, default=3000, help="port to listen on")
    serve.add_argument(
        "--role",
        choices=("all", "web"),
        default="all",
        help="all: HTTP and the scheduler in one process; web: HTTP only, run `fblink worker` beside it",
    )
    _drain_options(serve)
    serve.set_defaults(func=cmd_serve)
    worker = add("worker", "run the scheduler (sweeps, probes, pruning); serves only /healthz and /metrics")
    worker.add_argument("--host", default="127.0.0.1", help="address to listen on")
    worker.add_argument("--port", type=int, default=3001, help="port to listen on")
    _drain_options(worker)
    worker.set_defaults(func=cmd_serve, role="worker")
    check = add("check-config", "check the settings and exit")
    check.set_defaults(func=cmd_check_config)
    gen = add("gen-key", "print a new key for FBLINK_SECRET_KEY")
    gen.set_defaults(func=cmd_gen_key)
    mig = add("migrate", "bring the database's schema up to this version (run before an upgrade)")
    mig.set_defaults(func=cmd_migrate)
    sweep = add("sweep", "post due expiry reminders once and exit")
    sweep.add_argument("--now", help="the time the sweep uses, e.g. 2027-02-20T09:00:00Z (default: now)")
    sweep.add_argument(
        "--no-probe", action="store_true", help="skip the daily check of linked Page tokens with Facebook"
    )
    sweep.set_defaults(func=cmd_sweep)
    copy = add("copy-db", "copy an install into an empty database (e.g. SQLite to PostgreSQL) and verify it")
    copy.add_argument("--from", dest="source", required=True, help="sqlite:PATH, a path, or postgresql://…")
    copy.add_argument("--to", dest="target", required=True, help="postgresql://… (or another SQLite path)")
    copy.set_defaults(func=cmd_copy_db)
    rotate = add("rotate-keys", "re-encrypt stored secrets with the newest FBLINK_SECRET_KEY")
    rotate.add_argument("--batch", type=_batch_size, default=500, help="rows per write transaction")
    rotate.set_defaults(func=cmd_rotate_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):  # `fblink` alone: the commands, one line each
        parser.print_help()
        return 0
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
