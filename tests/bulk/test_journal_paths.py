"""Journal paths are built from escaped parts: no run id, dag id or task id can climb out or collide."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_whatsapp.bulk.progress import MAX_SEGMENT_CHARS, open_journal, path_segment
from airflow_provider_whatsapp.errors import WhatsAppValidationError
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from tests.bulk.helpers import MESSAGES, Inbox, context, numbers
from tests.loopback import LoopbackServer

TEXT = {"type": "text", "text": {"body": "hello"}}
ROOT = "/srv/progress"
HOSTILE = ["..", ".", "...", "../x", "a/b", "%2f", "%2F", "/", "a/../../b", "~", "x@1", "%", "\\..\\"]


def location(dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    return open_journal(ROOT, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index).location


def inside_root(path: str) -> bool:
    relative = os.path.relpath(os.path.normpath(path), ROOT)
    return not relative.startswith("..") and path == os.path.normpath(path)


@pytest.mark.parametrize("run_id", HOSTILE)
def test_a_hostile_run_id_stays_one_directory_under_its_dag(run_id: str) -> None:
    path = location("dag", run_id, "task")

    assert inside_root(path)
    assert os.path.dirname(os.path.dirname(path)) == f"{ROOT}/dag"
    assert len({location("dag", other, "task") for other in HOSTILE}) == len(HOSTILE)


def test_a_run_id_of_dot_dot_does_not_make_two_dags_share_a_journal(
    maton_conn: LoopbackServer, tmp_path: Path
) -> None:
    inbox = Inbox()
    maton_conn.route("POST", MESSAGES, inbox)

    def run(dag_id: str) -> dict:
        return WhatsAppSendBulkOperator(
            task_id="bulk", recipients=numbers(3), message=TEXT, progress_path=str(tmp_path / "progress")
        ).execute(context(dag_id=dag_id, run_id=".."))

    first, second = run("billing"), run("marketing")

    assert first["sent"] == 3 and second["sent"] == 3 and second["skipped"] == 0
    assert len(inbox.delivered) == 6
    journals = sorted(p.relative_to(tmp_path / "progress").as_posix() for p in tmp_path.rglob("*.jsonl"))
    assert journals == ["billing/%2E%2E/bulk.jsonl", "marketing/%2E%2E/bulk.jsonl"]


def test_mapped_and_unmapped_tasks_with_look_alike_ids_do_not_collide() -> None:
    assert location("d", "r", "t.3") != location("d", "r", "t", 3)
    assert location("d", "r", "t@3") != location("d", "r", "t", 3)
    assert location("d", "r", "t", -1) == location("d", "r", "t")  # -1 is "not mapped"


def test_a_long_run_id_is_shortened_but_stays_distinct() -> None:
    long_a, long_b = "manual__" + "é" * 300, "manual__" + "é" * 299 + "e"
    a, b = path_segment(long_a), path_segment(long_b)
    assert a != b and len(a) <= MAX_SEGMENT_CHARS and "~" in a
    assert len(os.path.basename(location("d", long_a, "t" * 250, 12))) < 255


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [("run_id", {"run_id": ""}), ("dag_id", {"dag_id": None}), ("map_index", {"map_index": "3"})],
)
def test_empty_or_odd_parts_are_refused_by_name(field: str, kwargs: dict) -> None:
    parts = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": None, **kwargs}
    with pytest.raises(WhatsAppValidationError, match=f"^{field}: "):
        open_journal(ROOT, **parts)


ids = st.text(min_size=1, max_size=300)
instances = st.tuples(ids, ids, ids, st.one_of(st.none(), st.integers(min_value=-1, max_value=2**40)))


def _key(instance: tuple) -> tuple:
    dag_id, run_id, task_id, map_index = instance
    return dag_id, run_id, task_id, None if map_index is None or map_index < 0 else map_index


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=instances, second=instances)
@example(first=("d", "r", "t.3", None), second=("d", "r", "t", 3))
@example(first=("d", "..", "t", None), second=("d", "%2E%2E", "t", None))
@example(first=("d", "a/b", "t", None), second=("d/a", "b", "t", None))
@example(first=("d", "r", "t", -1), second=("d", "r", "t", None))
def test_distinct_task_instances_get_distinct_journals_inside_the_root(first: tuple, second: tuple) -> None:
    a, b = location(*first), location(*second)

    assert inside_root(a) and inside_root(b)
    assert len(Path(a).relative_to(ROOT).parts) == 3  # dag / run / task file: no part split or dropped
    assert all(len(part.encode()) < 255 for part in Path(a).parts)
    assert (a == b) == (_key(first) == _key(second))


@settings(max_examples=1000, deadline=None)
@given(st.text(), st.text())
@example("..", "%2E%2E")
@example("a/b", "a%2Fb")
@example("~", "%7E")
@example("x" * 400, "x" * 399 + "y")
def test_path_segment_is_one_to_one_and_never_navigates(a: str, b: str) -> None:
    segment = path_segment(a)
    assert "/" not in segment and "\\" not in segment and "\x00" not in segment
    assert segment not in {".", ".."} and segment.isascii()
    assert (segment == path_segment(b)) == (a == b)
