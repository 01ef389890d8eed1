"""`fblink serve | sweep | gen-key | check-config | demo`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.crypto import generate_key
from bot.settings import Settings, SettingsError, load_settings


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"fblink: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.logs import setup_logging

    settings = _settings_or_exit()
    setup_logging(settings.fblink_log_format, settings.fblink_log_level)
    app = create_app(settings)
    uvicorn.run(
        app.asgi, host=args.host, port=args.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=args.grace,
    )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from bot.clock import Clock, FixedClock
    from bot.logs import setup_logging
    from bot.reminders import run_sweep_once

    settings = _settings_or_exit()
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
    settings = _settings_or_exit()
    mode = "Socket Mode" if settings.socket_mode else "HTTP"
    print(f"configuration ok ({mode}; database {settings.fblink_database})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo.run import main as run_demo

    return run_demo(args.host, args.port, args.database)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fblink", description="Link Facebook Pages to Vonage from Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot (HTTP server, Slack listeners, scheduler)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--grace", type=int, default=10, help="seconds in-flight requests get on SIGTERM")
    serve.set_defaults(func=cmd_serve)
    sweep = sub.add_parser("sweep", help="post due expiry reminders once and exit")
    sweep.add_argument("--now", help="the time the sweep uses, e.g. 2027-02-20T09:00:00Z")
    sweep.add_argument("--no-probe", action="store_true",
                       help="skip the daily check of linked Page tokens with Facebook")
    sweep.set_defaults(func=cmd_sweep)
    gen = sub.add_parser("gen-key", help="print a new FBLINK_SECRET_KEY")
    gen.set_defaults(func=cmd_gen_key)
    check = sub.add_parser("check-config", help="validate the configuration and exit")
    check.set_defaults(func=cmd_check_config)
    demo = sub.add_parser("demo", help="try fblink in a browser against simulated Slack, Facebook and Vonage")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=3000)
    demo.add_argument("--database", help="keep the demo's state in this file (default: a fresh temporary file)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
