"""``whatsapp-sandbox``: run the sandbox in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox, wait_until_stopped
from airflow_provider_whatsapp.sandbox.state import DEFAULT_API_KEY
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sandbox = WhatsAppSandbox(
        args.port,
        api_key=args.api_key,
        approval_delay=args.approval_delay,
        require_window=args.require_window,
        rate_limit=args.rate_limit,
        seed=not args.no_seed,
    )
    try:
        sandbox.start()
    except OSError as error:
        print(f"whatsapp-sandbox: cannot listen on 127.0.0.1:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"WhatsApp sandbox on {sandbox.url}  (inbox: {sandbox.url}/)", flush=True)
    print(f"export AIRFLOW_CONN_MATON_DEFAULT='{sandbox.connection_json()}'", flush=True)
    try:
        wait_until_stopped()
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
