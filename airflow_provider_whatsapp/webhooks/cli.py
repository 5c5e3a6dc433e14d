"""``whatsapp-webhooks``: the receiver on its own, for Airflow 2.11 or when the API server is not public.

It serves the same URLs as the API-server plugin (``/whatsapp/webhook...``) and reads the same
connection. Install the ``webhooks`` extra where Airflow does not ship FastAPI and uvicorn.
"""

from __future__ import annotations

import argparse
import os
import sys

from airflow_provider_whatsapp.webhooks.settings import CONN_ID_ENV, DEFAULT_CONN_ID

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8085


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whatsapp-webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--conn-id",
        default=os.environ.get(CONN_ID_ENV) or DEFAULT_CONN_ID,
        help=f"the Maton connection with the webhook settings (default ${CONN_ID_ENV} or {DEFAULT_CONN_ID})",
    )
    args = parser.parse_args(argv)
    try:
        import uvicorn

        from airflow_provider_whatsapp.webhooks.app import standalone_app
    except ImportError:
        print(
            "whatsapp-webhooks needs FastAPI and uvicorn: pip install 'airflow-provider-whatsapp[webhooks]'",
            file=sys.stderr,
        )
        return 2
    # No access log: Meta's verification request carries the verify token in its query string.
    uvicorn.run(
        standalone_app(conn_id=args.conn_id),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
