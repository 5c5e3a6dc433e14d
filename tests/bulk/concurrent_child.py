"""One bulk send in a process of its own, for the tests that start two runs of one task instance at once.

``python -m tests.bulk.concurrent_child PROGRESS RUN_ID STORE [JOURNAL_WAIT]``: ``STORE`` is ``local``
(the journal as a file under PROGRESS) or ``object`` (the object-store journal, on a ``file://``
store under PROGRESS). Touches ``PROGRESS/ready-{pid}`` just before the send starts, prints the XCom
result as JSON, or the error on stderr with exit status 3. Kept free of ``tests.conftest``: the
parent passes the connection and AIRFLOW_HOME through the environment.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator

RECIPIENTS = 30
TEXT = {"type": "text", "text": {"body": "Your statement is ready"}}


def recipients() -> list[str]:
    return [f"+1 415 555 {i:04d}" for i in range(RECIPIENTS)]


def use_object_store(root: str) -> None:
    """Every journal of this process in one directory of a ``file://`` object store."""
    from airflow_provider_whatsapp._compat import ObjectStoragePath
    from airflow_provider_whatsapp.bulk import progress

    def open_object_journal(*args: Any, **kwargs: Any) -> progress.ObjectStoreJournal:
        return progress.ObjectStoreJournal(ObjectStoragePath(f"file://{root}/store/journal"))

    progress.open_journal = open_object_journal  # type: ignore[assignment]


def main(progress_path: str, run_id: str, store: str, journal_wait: float) -> int:
    if store == "object":
        use_object_store(progress_path)
    options: dict[str, Any] = {"journal_wait": journal_wait} if journal_wait else {}
    operator = WhatsAppSendBulkOperator(
        task_id="bulk",
        recipients=recipients(),
        message=TEXT,
        max_rate=50,
        progress_path=progress_path,
        **options,
    )
    ti = SimpleNamespace(dag_id="bulk_dag", task_id="bulk", run_id=run_id, map_index=-1, try_number=1)
    Path(progress_path, f"ready-{os.getpid()}").touch()
    try:
        result = operator.execute({"ti": ti})
    except Exception as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    wait = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], wait))
