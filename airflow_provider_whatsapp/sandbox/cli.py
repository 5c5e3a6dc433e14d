"""``whatsapp-sandbox``: run the sandbox in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox, wait_until_stopped
from airflow_provider_whatsapp.sandbox.state import (
    DEFAULT_API_KEY,
    DEFAULT_DELIVERED_DELAY,
    DEFAULT_SENT_DELAY,
)
from airflow_provider_whatsapp.sandbox.validation import GraphError
from airflow_provider_whatsapp.spec.limits import MATON_REQUESTS_PER_SECOND


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whatsapp-sandbox",
        description="A local WhatsApp Business sandbox (Maton gateway + Graph API) on 127.0.0.1, "
        "with an inbox page showing every conversation.",
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key the sandbox accepts")
    parser.add_argument(
        "--approval-delay",
        type=float,
        default=0.0,
        help="seconds a new template stays PENDING before it is APPROVED (or REJECTED); "
        "with 0 it is approved from the first read after its creation",
    )
    parser.add_argument(
        "--require-window",
        action="store_true",
        help="refuse free-form messages (131047) to recipients who have not written in 24 h",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=MATON_REQUESTS_PER_SECOND,
        help="requests per second per key through the gateway (0: off)",
    )
    parser.add_argument("--no-seed", action="store_true", help="start without the default templates")
    parser.add_argument(
        "--webhook-url",
        help="POST every webhook event (statuses, inbound messages) to this URL on this machine, "
        "as WhatsApp POSTs to its callback URL",
    )
    parser.add_argument(
        "--app-secret",
        help="sign the webhook events (X-Hub-Signature-256) with this app secret; without it they are "
        "signed with a secret nobody is told, as through Maton",
    )
    parser.add_argument(
        "--status-delays",
        type=_delays,
        metavar="SENT,DELIVERED[,READ]",
        help="seconds between accepted -> sent -> delivered (-> read) of each message "
        f"(default {DEFAULT_SENT_DELAY:g},{DEFAULT_DELIVERED_DELAY:g}: read only when the recipient answers)",
    )
    parser.add_argument(
        "--unreachable",
        action="append",
        default=[],
        metavar="NUMBER",
        help="a number whose messages are accepted, then fail by status (131026); repeatable",
    )
    return parser


def _delays(value: str) -> tuple[float, float, float | None]:
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give SENT,DELIVERED[,READ] in seconds") from None
    if not 2 <= len(numbers) <= 3 or any(n < 0 for n in numbers):
        raise argparse.ArgumentTypeError(f"{value!r}: give two or three non-negative numbers of seconds")
    return numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sandbox = WhatsAppSandbox(
        args.port,
        api_key=args.api_key,
        approval_delay=args.approval_delay,
        require_window=args.require_window,
        rate_limit=args.rate_limit,
        seed=not args.no_seed,
        unreachable=tuple(args.unreachable),
        **_delay_settings(args.status_delays),
    )
    try:
        if args.webhook_url:
            sandbox.set_webhook(args.webhook_url, app_secret=args.app_secret)
        elif args.app_secret:
            sandbox.configure(app_secret=args.app_secret)
    except GraphError as error:
        print(f"whatsapp-sandbox: --webhook-url: {error.details}", file=sys.stderr)
        return 2
    try:
        sandbox.start()
    except OSError as error:
        print(f"whatsapp-sandbox: cannot listen on 127.0.0.1:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"WhatsApp sandbox on {sandbox.url}  (inbox: {sandbox.url}/)", flush=True)
    print(f"export AIRFLOW_CONN_MATON_DEFAULT='{sandbox.connection_json()}'", flush=True)
    if args.webhook_url:
        print(f"webhook events go to {args.webhook_url}", flush=True)
    try:
        wait_until_stopped()
    finally:
        sandbox.stop()
    return 0


def _delay_settings(delays: tuple[float, float, float | None] | None) -> dict[str, float | None]:
    if delays is None:
        return {}
    return {"sent_delay": delays[0], "delivered_delay": delays[1], "read_delay": delays[2]}


if __name__ == "__main__":
    raise SystemExit(main())
