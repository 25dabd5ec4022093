"""`dcvpn window check`: refuse a deploy outside the change window, unless forced.

The window comes from --change-window or DCVPN_CHANGE_WINDOW, e.g.
"Sat 22:00-Sun 04:00 UTC, Wed 01:00-03:00 Europe/Berlin", or `always` / `never`.
Exit 0 inside the window (or forced), 1 outside, 2 no or unreadable window.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from inventory.durations import parse_duration
from pipelines.change_window import Verdict, WindowError, check
from pipelines.exit_codes import Exit

Handler = Callable[[argparse.Namespace], int]
TRUE = ("1", "true", "yes")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DCVPN_{name.upper()}", default)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    window = subparsers.add_parser("window", help="change-window guard for deploys",
                                   description=__doc__)
    sub = window.add_subparsers(dest="window_command", metavar="COMMAND", required=True)
    p = sub.add_parser("check", help="exit 0 inside the change window, 1 outside",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--change-window", default=_env("change_window"), metavar="SPEC",
                   help="e.g. 'Sat 22:00-Sun 04:00 UTC', comma separated; always | never "
                        "[env DCVPN_CHANGE_WINDOW]")
    p.add_argument("--at", default=_env("at"), metavar="TIME",
                   help="check this ISO 8601 time instead of now (UTC when it has no zone) "
                        "[env DCVPN_AT]")
    p.add_argument("--window-margin", default=_env("window_margin", "0"), metavar="DURATION",
                   help="the window must stay open this much longer, e.g. 30m "
                        "[env DCVPN_WINDOW_MARGIN]")
    p.add_argument("--force", action="store_true",
                   default=(_env("force") or "").lower() in TRUE,
                   help="allow outside the window (says so) [env DCVPN_FORCE=1]")
    p.add_argument("--format", default=_env("format", "text"), metavar="text|json",
                   help="output format: text, json (default text) [env DCVPN_FORMAT]")
    p.set_defaults(handler=cmd_window_check, format_choices=("text", "json"))


def _moment(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WindowError(f"--at {text!r} is not an ISO 8601 time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _margin(text: str) -> int:
    if text.strip() in ("", "0"):
        return 0
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise WindowError(f"--window-margin: {exc}") from exc


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _line(verdict: Verdict, forced: bool) -> str:
    if verdict.open:
        until = f" until {_iso(verdict.closes)}" if verdict.closes else ""
        return f"deploy allowed: {verdict.reason}{until}"
    nxt = f"; it opens next at {_iso(verdict.opens)}" if verdict.opens else ""
    if forced:
        return f"deploy FORCED (DCVPN_FORCE): {verdict.reason}{nxt}"
    return f"deploy refused: {verdict.reason}{nxt} (set DCVPN_FORCE=1 to override)"


def cmd_window_check(args: argparse.Namespace) -> int:
    if args.format not in args.format_choices:
        print(f"dcvpn window: --format must be one of text, json, not {args.format!r}",
              file=sys.stderr)
        return Exit.BAD_INPUT
    try:
        if not args.change_window:
            raise WindowError("no change window given: use --change-window SPEC or set "
                              "DCVPN_CHANGE_WINDOW (e.g. 'Sat 22:00-Sun 04:00 UTC' or always)")
        moment = _moment(args.at)
        verdict = check(args.change_window, moment, _margin(args.window_margin))
    except WindowError as exc:
        print(f"dcvpn window: {exc}", file=sys.stderr)
        return Exit.BAD_INPUT
    allowed = verdict.open or args.force
    if args.format == "json":
        print(json.dumps({"allowed": allowed, "open": verdict.open,
                          "forced": args.force and not verdict.open,
                          "reason": verdict.reason, "at": _iso(moment),
                          "closes": _iso(verdict.closes), "opens": _iso(verdict.opens)},
                         indent=2))
    print(f"dcvpn window: {_line(verdict, args.force)}", file=sys.stderr)
    return Exit.OK if allowed else Exit.FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.window_cmd window check ...` (before it is wired into dcvpn)."""
    parser = argparse.ArgumentParser(prog="dcvpn")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return Exit.BAD_INPUT
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
