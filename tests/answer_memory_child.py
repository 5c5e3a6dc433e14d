"""Child process of the memory test: read a huge answer with the hook, print the peak RSS growth as JSON.

Run as ``python -m tests.answer_memory_child send|read`` with ``AIRFLOW_CONN_MATON_DEFAULT`` pointing
at the server. Everything is imported and one small request made first, so only the answer counts.
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys

from airflow_provider_whatsapp.errors import WhatsAppError
from airflow_provider_whatsapp.hooks.maton import MatonHook

TEXT = {"to": "14155550100", "type": "text", "text": {"body": "hello"}}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(method: str) -> None:
    hook = MatonHook(rate_limit=0, max_attempts=1, timeout=120)
    with contextlib.suppress(WhatsAppError):  # warm up: the same code paths, on a route answering at once
        hook.request("GET", "warm-up")
    before = peak_rss_mb()
    error: WhatsAppError | None = None
    try:
        if method == "send":
            hook.send_message(TEXT)
        else:
            hook.get_phone_number()
    except WhatsAppError as caught:
        error = caught
    growth = peak_rss_mb() - before
    print(
        json.dumps(
            {
                "error": type(error).__name__ if error else None,
                "message": str(error) if error else "",
                "peak_rss_growth_mb": round(growth, 1),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
