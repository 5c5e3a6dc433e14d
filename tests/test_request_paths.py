"""Ids cannot steer a request: every id argument is checked before any request, every path segment is
encoded. Each hostile value goes through a real loopback gateway that must receive nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_whatsapp.errors import WhatsAppConfigurationError, WhatsAppValidationError
from airflow_provider_whatsapp.hooks import _paths
from airflow_provider_whatsapp.hooks.maton import MatonHook
from airflow_provider_whatsapp.notifications.whatsapp import WhatsAppNotifier
from airflow_provider_whatsapp.operators.bulk import WhatsAppSendBulkOperator
from airflow_provider_whatsapp.operators.media import WhatsAppDeleteMediaOperator, WhatsAppUploadMediaOperator
from airflow_provider_whatsapp.operators.messages import WhatsAppMarkAsReadOperator, WhatsAppSendTextOperator
from airflow_provider_whatsapp.operators.templates import (
    WhatsAppCreateTemplateOperator,
    WhatsAppDeleteTemplateOperator,
)
from airflow_provider_whatsapp.sensors.template import WhatsAppTemplateApprovalSensor
from airflow_provider_whatsapp.triggers.template import WhatsAppTemplateApprovalTrigger
from tests.conftest import PHONE_NUMBER_ID, TEST_KEY, WABA_ID, connection_json
from tests.dagrun import load_dag, task_states
from tests.loopback import LoopbackServer, Reply, sent

TEXT = {"to": "14155550100", "type": "text", "text": {"body": "hello"}}
COMPONENTS = [{"type": "BODY", "text": "Report ready"}]
RECIPIENT = "+1 415 555 0100"

# Values a DAG could render into an id argument. Each must stop before any request.
HOSTILE: dict[str, str] = {
    "traversal": "../../connections/abc",
    "inner_dotdot": "123/../456",
    "query": "123?x=1",
    "fragment": "123#f",
    "encoded_slash": "12%2f3",
    "encoded_dotdot": "%2e%2e",
    "dotdot": "..",
    "dot": ".",
    "empty": "",
    "leading_space": " 123",
    "trailing_newline": "123\n",
    "header_injection": "123\r\nX-Injected: 1",
    "arabic_digits": "\u0661\u0662\u0663",
    "fullwidth_digits": "\uff11\uff12\uff13",
    "trailing_slash": "123/",
    "very_long": "1" * 5000,
}


def _upload_file(tmp_path: Path) -> Path:
    path = tmp_path / "chart.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    return path


def _run_trigger(**kwargs: Any) -> dict[str, Any]:
    trigger = WhatsAppTemplateApprovalTrigger(template_name="daily_report", poke_interval=0.01, **kwargs)

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger yielded nothing")

    return asyncio.run(first())


def _rendered(operator: Any, **values: Any) -> Any:
    # What Jinja rendering does at run time: the attribute holds the rendered value.
    for name, value in values.items():
        setattr(operator, name, value)
    return operator


# Every id argument of every hook method, operator, sensor, trigger and the notifier:
# name -> (field the error must name, call(value, tmp_path)). Optional operator arguments are given as
# Jinja at parse time and rendered to the hostile value, as a DAG run would.
Call = Callable[[Any, Path], Any]
J = "{{ params.value }}"
TARGETS: dict[str, tuple[str, Call]] = {
    # hook methods
    "hook.send_message": ("phone_number_id", lambda v, _: MatonHook().send_message(TEXT, phone_number_id=v)),
    "hook.asend_message": (
        "phone_number_id",
        lambda v, _: asyncio.run(MatonHook().asend_message(TEXT, phone_number_id=v)),
    ),
    "hook.mark_as_read": (
        "phone_number_id",
        lambda v, _: MatonHook().mark_as_read("wamid.X", phone_number_id=v),
    ),
    "hook.get_phone_number": ("phone_number_id", lambda v, _: MatonHook().get_phone_number(v)),
    "hook.get_business_profile": ("phone_number_id", lambda v, _: MatonHook().get_business_profile(v)),
    "hook.update_business_profile": (
        "phone_number_id",
        lambda v, _: MatonHook().update_business_profile(phone_number_id=v, about="Reports"),
    ),
    "hook.upload_media": (
        "phone_number_id",
        lambda v, tmp: MatonHook().upload_media(_upload_file(tmp), phone_number_id=v),
    ),
    "hook.aupload_media": (
        "phone_number_id",
        lambda v, tmp: asyncio.run(MatonHook().aupload_media(_upload_file(tmp), phone_number_id=v)),
    ),
    "hook.delete_media.phone_number_id": (
        "phone_number_id",
        lambda v, _: MatonHook().delete_media("4490001", phone_number_id=v),
    ),
    "hook.list_phone_numbers": ("waba_id", lambda v, _: MatonHook().list_phone_numbers(v)),
    "hook.list_templates": ("waba_id", lambda v, _: MatonHook().list_templates(waba_id=v)),
    "hook.alist_templates": ("waba_id", lambda v, _: asyncio.run(MatonHook().alist_templates(waba_id=v))),
    "hook.create_template": (
        "waba_id",
        lambda v, _: MatonHook().create_template(
            name="daily_report", language="en_US", category="UTILITY", components=COMPONENTS, waba_id=v
        ),
    ),
    "hook.delete_template.waba_id": (
        "waba_id",
        lambda v, _: MatonHook().delete_template("daily_report", waba_id=v),
    ),
    "hook.delete_template.template_id": (
        "template_id",
        lambda v, _: MatonHook().delete_template("daily_report", template_id=v),
    ),
    "hook.get_media": ("media_id", lambda v, _: MatonHook().get_media(v)),
    "hook.aget_media": ("media_id", lambda v, _: asyncio.run(MatonHook().aget_media(v))),
    "hook.delete_media": ("media_id", lambda v, _: MatonHook().delete_media(v)),
    "hook.adelete_media": ("media_id", lambda v, _: asyncio.run(MatonHook().adelete_media(v))),
    "hook.download_media": ("media_id", lambda v, tmp: MatonHook().download_media(v, tmp / "out.bin")),
    "hook.get_maton_connection": ("connection_id", lambda v, _: MatonHook().get_maton_connection(v)),
    "hook.delete_maton_connection": ("connection_id", lambda v, _: MatonHook().delete_maton_connection(v)),
    "MatonHook(connection_id=)": (
        "connection_id",
        lambda v, _: MatonHook(connection_id=v).send_message(TEXT),
    ),
    "MatonHook(phone_number_id=)": (
        "phone_number_id",
        lambda v, _: MatonHook(phone_number_id=v).send_message(TEXT),
    ),
    "MatonHook(waba_id=)": ("waba_id", lambda v, _: MatonHook(waba_id=v).list_templates()),
    "hook.request": ("graph_path", lambda v, _: MatonHook().request("GET", v)),
    "hook.arequest": ("graph_path", lambda v, _: asyncio.run(MatonHook().arequest("GET", v))),
}


def _rendered_target(make: Callable[..., Any], run: str, field: str) -> tuple[str, Call]:
    """A target whose ``field`` is Jinja at parse time and rendered to the hostile value at run time."""

    def call(value: Any, tmp: Path) -> Any:
        return getattr(_rendered(make(tmp, **{field: J}), **{field: value}), run)({})

    return field, call


# Operators, the sensor and the notifier: name -> (build(tmp, **ids), the method a run calls, id fields).
RENDERED: dict[str, tuple[Callable[..., Any], str, tuple[str, ...]]] = {
    "SendText": (
        lambda _, **ids: WhatsAppSendTextOperator(task_id="t", to=RECIPIENT, body="hi", **ids),
        "execute",
        ("phone_number_id", "connection_id"),
    ),
    "MarkAsRead": (
        lambda _, **ids: WhatsAppMarkAsReadOperator(task_id="t", message_id="wamid.X", **ids),
        "execute",
        ("phone_number_id",),
    ),
    "UploadMedia": (
        lambda tmp, **ids: WhatsAppUploadMediaOperator(task_id="t", file_path=str(_upload_file(tmp)), **ids),
        "execute",
        ("phone_number_id",),
    ),
    "DeleteMedia": (
        lambda _, **ids: WhatsAppDeleteMediaOperator(task_id="t", **{"media_id": "4490001", **ids}),
        "execute",
        ("media_id", "phone_number_id"),
    ),
    "CreateTemplate": (
        lambda _, **ids: WhatsAppCreateTemplateOperator(
            task_id="t",
            name="daily_report",
            language="en_US",
            category="UTILITY",
            components=COMPONENTS,
            **ids,
        ),
        "execute",
        ("waba_id",),
    ),
    "DeleteTemplate": (
        lambda _, **ids: WhatsAppDeleteTemplateOperator(task_id="t", name="daily_report", **ids),
        "execute",
        ("waba_id", "template_id", "connection_id"),
    ),
    "Sensor": (
        lambda _, **ids: WhatsAppTemplateApprovalSensor(task_id="t", template_name="daily_report", **ids),
        "poke",
        ("waba_id", "connection_id"),
    ),
    "Bulk": (
        lambda tmp, **ids: WhatsAppSendBulkOperator(
            task_id="t",
            recipients=[RECIPIENT],
            message={"type": "text", "text": {"body": "hi"}},
            progress_path=str(tmp / "progress"),
            **ids,
        ),
        "execute",
        ("phone_number_id", "connection_id"),
    ),
    "Notifier": (
        lambda _, **ids: WhatsAppNotifier(to=RECIPIENT, body="failed", **ids),
        "notify",
        ("phone_number_id", "connection_id"),
    ),
}
TARGETS.update(
    {
        f"{name}.{field}": _rendered_target(make, run, field)
        for name, (make, run, fields) in RENDERED.items()
        for field in fields
    }
)

# Optional operator arguments rendered empty mean "the connection's value", as Airflow users expect of
# an unset template; every other empty id is refused. Hook arguments given empty are always refused.
_EMPTY_MEANS_DEFAULT = {
    name
    for name, (field, _) in TARGETS.items()
    if "." in name
    and not name.startswith("hook.")
    and field in ("phone_number_id", "waba_id", "connection_id")
}
CASES = [
    pytest.param(target, value, id=f"{target}-{label}")
    for target in TARGETS
    for label, value in HOSTILE.items()
    if not (label == "empty" and target in _EMPTY_MEANS_DEFAULT)
]


def _route_everything(server: LoopbackServer) -> None:
    # Whatever arrives would succeed, so only the check can stop a request.
    for method in ("GET", "POST", "DELETE"):
        server.route(method, r".*", Reply(json={**sent(), "id": "1", "success": True, "data": [], "url": ""}))


@pytest.mark.parametrize(("target", "value"), CASES)
def test_a_hostile_id_stops_before_any_request(
    maton_conn: LoopbackServer, tmp_path: Path, target: str, value: str
) -> None:
    field, call = TARGETS[target]
    _route_everything(maton_conn)

    with pytest.raises(WhatsAppValidationError) as raised:
        call(value, tmp_path)

    assert str(raised.value).startswith(f"{field}: "), str(raised.value)
    assert maton_conn.requests == []


def test_hostile_ids_through_the_deferred_trigger_end_in_an_error_event(maton_conn: LoopbackServer) -> None:
    _route_everything(maton_conn)
    tried = 0
    for field in ("waba_id", "connection_id"):
        for value in HOSTILE.values():
            if value == "":
                continue  # the sensor passes an empty value on as None: the connection's
            event = _run_trigger(**{field: value})
            tried += 1
            assert event["status"] == "error"
            assert event["message"].startswith(f"{field}: ")
    assert tried == 2 * (len(HOSTILE) - 1)
    assert maton_conn.requests == []


def test_empty_optional_operator_ids_mean_the_connections_values(maton_conn: LoopbackServer) -> None:
    maton_conn.route("POST", r"/messages$", Reply(json=sent("wamid.OK")))
    operator = _rendered(
        WhatsAppSendTextOperator(task_id="t", to=RECIPIENT, body="hi", phone_number_id=J, connection_id=J),
        phone_number_id="",
        connection_id="",
    )

    assert operator.execute({}) == "wamid.OK"
    (request,) = maton_conn.requests
    assert request.path == f"/whatsapp-business/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.header("Maton-Connection") is None


def test_the_delete_media_traversal_no_longer_reaches_the_control_plane(maton_conn: LoopbackServer) -> None:
    # On the old code this DELETE went to /connections/abc and removed the Maton connection.
    maton_conn.route("DELETE", r".*", Reply(json={"success": True}))
    operator = _rendered(
        WhatsAppDeleteMediaOperator(task_id="t", media_id=J), media_id="../../connections/abc"
    )

    with pytest.raises(WhatsAppValidationError, match=r"^media_id: '\.\./\.\./connections/abc' is not valid"):
        operator.execute({})

    assert maton_conn.requests_to("DELETE", r"/connections/") == []
    assert maton_conn.requests == []


# --- ids from the connection's extra ------------------------------------------------------------


@pytest.mark.parametrize("key", ["phone_number_id", "waba_id", "connection_id", "api_version", "app"])
@pytest.mark.parametrize("label", sorted(set(HOSTILE) - {"empty"}))
def test_hostile_connection_extras_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, key: str, label: str
) -> None:
    _route_everything(loopback)
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url, **{key: HOSTILE[label]}))

    with pytest.raises(WhatsAppConfigurationError) as raised:
        MatonHook().list_templates() if key == "waba_id" else MatonHook().send_message(TEXT)

    message = str(raised.value)
    assert message.startswith(f"{key} in the extra of the connection 'maton_default'"), message
    assert TEST_KEY not in message
    assert loopback.requests == []


@pytest.mark.parametrize("host_suffix", ["/?x=1", "/#frag", "?next=/connections"])
def test_a_host_with_a_query_or_fragment_is_refused(
    monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer, host_suffix: str
) -> None:
    _route_everything(loopback)
    monkeypatch.setenv("AIRFLOW_CONN_MATON_DEFAULT", connection_json(loopback.url + host_suffix))

    with pytest.raises(WhatsAppConfigurationError, match=r"^host of the connection 'maton_default'"):
        MatonHook().send_message(TEXT)

    assert loopback.requests == []


def test_well_formed_ids_still_reach_their_paths(maton_conn: LoopbackServer) -> None:
    uuid = "0f7c5a1e-5a4d-4b59-9d7e-5a9c1e0b5a01"
    _route_everything(maton_conn)
    maton_conn.route("GET", r"^/connections/", Reply(json={"connection": {"connection_id": uuid}}))
    hook = MatonHook(connection_id=uuid)

    hook.send_message(TEXT, phone_number_id=106540352242999)  # a rendered int is an id too
    hook.delete_media("4490001")
    hook.delete_template("daily_report", template_id="5944")
    hook.request("GET", f"/{WABA_ID}/phone_numbers")
    hook.get_maton_connection(uuid)

    assert [(r.method, r.path) for r in maton_conn.requests] == [
        ("POST", "/whatsapp-business/v21.0/106540352242999/messages"),
        ("DELETE", "/whatsapp-business/v21.0/4490001"),
        ("DELETE", f"/whatsapp-business/v21.0/{WABA_ID}/message_templates"),
        ("GET", f"/whatsapp-business/v21.0/{WABA_ID}/phone_numbers"),
        ("GET", f"/connections/{uuid}"),
    ]
    assert maton_conn.requests[0].header("Maton-Connection") == uuid
    assert maton_conn.requests[1].query == {"phone_number_id": [PHONE_NUMBER_ID]}
    assert maton_conn.requests[2].query == {"name": ["daily_report"], "hsm_id": ["5944"]}


# --- DAG parse time and rendering ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "build"),
    [
        ("media_id", lambda: WhatsAppDeleteMediaOperator(task_id="t", media_id="../../connections/x")),
        (
            "phone_number_id",
            lambda: WhatsAppDeleteMediaOperator(task_id="t", media_id="1", phone_number_id="1/.."),
        ),
        (
            "connection_id",
            lambda: WhatsAppSendTextOperator(task_id="t", to=RECIPIENT, body="hi", connection_id="a/b"),
        ),
        (
            "phone_number_id",
            lambda: WhatsAppUploadMediaOperator(task_id="t", file_path="x.png", phone_number_id="1?"),
        ),
        (
            "phone_number_id",
            lambda: WhatsAppMarkAsReadOperator(task_id="t", message_id="w", phone_number_id="#1"),
        ),
        (
            "waba_id",
            lambda: WhatsAppCreateTemplateOperator(
                task_id="t",
                name="n",
                language="en_US",
                category="UTILITY",
                components=COMPONENTS,
                waba_id="..",
            ),
        ),
        ("waba_id", lambda: WhatsAppDeleteTemplateOperator(task_id="t", name="n", waba_id="12%2f3")),
        ("template_id", lambda: WhatsAppDeleteTemplateOperator(task_id="t", name="n", template_id="")),
        ("waba_id", lambda: WhatsAppTemplateApprovalSensor(task_id="t", template_name="n", waba_id=" 1")),
        (
            "connection_id",
            lambda: WhatsAppTemplateApprovalSensor(task_id="t", template_name="n", connection_id="."),
        ),
        (
            "phone_number_id",
            lambda: WhatsAppSendBulkOperator(
                task_id="t", recipients=[RECIPIENT], template_name="n", phone_number_id="1\n"
            ),
        ),
        ("phone_number_id", lambda: WhatsAppNotifier(to=RECIPIENT, body="x", phone_number_id="\u0661")),
        ("connection_id", lambda: WhatsAppNotifier(to=RECIPIENT, body="x", connection_id="c?x=1")),
        (
            "phone_number_id",
            lambda: WhatsAppSendTextOperator(task_id="t", to=RECIPIENT, body="hi", phone_number_id=True),
        ),
    ],
)
def test_a_concrete_bad_id_fails_when_the_dag_is_parsed(field: str, build: Callable[[], Any]) -> None:
    with pytest.raises(WhatsAppValidationError, match=rf"^{field}: "):
        build()


def test_jinja_and_xcomarg_ids_wait_for_rendering() -> None:
    import datetime

    try:
        from airflow.sdk import DAG, task
    except ImportError:
        from airflow import DAG
        from airflow.decorators import task

    @task
    def media() -> str:
        return "4490001"

    with DAG("ids_at_parse_time", schedule=None, start_date=datetime.datetime(2024, 1, 1)):
        lazy = WhatsAppDeleteMediaOperator(task_id="lazy", media_id=media(), phone_number_id="{{ params.p }}")
        jinja = WhatsAppDeleteTemplateOperator(task_id="jinja", name="n", template_id="{{ params.t }}")

    assert jinja.template_id == "{{ params.t }}"
    assert "media" in lazy.upstream_task_ids


_DAG_FILE = """
from __future__ import annotations

import datetime

from airflow_provider_whatsapp.operators.media import WhatsAppDeleteMediaOperator

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

with DAG(
    "hostile_media_id",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    params={"media_id": "4490001"},
) as dag:
    WhatsAppDeleteMediaOperator(task_id="delete_media", media_id=MEDIA_ID)
"""


@pytest.mark.integration
def test_a_rendered_hostile_id_fails_the_task_before_any_request(
    maton_conn: LoopbackServer, dags_folder: Path, tmp_path: Path
) -> None:
    _route_everything(maton_conn)
    source = tmp_path / "hostile_media_id.py"
    source.write_text(_DAG_FILE.replace("MEDIA_ID", json.dumps("{{ params.media_id }}")))
    dag = load_dag(source, dags_folder, "hostile_media_id")

    run = dag.test(run_conf={"media_id": "../../connections/abc"})

    assert task_states(run) == {"delete_media": "failed"}
    assert maton_conn.requests == []


@pytest.mark.integration
def test_a_concrete_hostile_id_fails_the_dag_import(dags_folder: Path, tmp_path: Path) -> None:
    source = tmp_path / "hostile_media_id_concrete.py"
    source.write_text(_DAG_FILE.replace("MEDIA_ID", json.dumps("../../connections/abc")))

    try:
        with pytest.raises(WhatsAppValidationError, match=r"^media_id: "):
            load_dag(source, dags_folder, "hostile_media_id")
    finally:
        (dags_folder / source.name).unlink()


# --- the path builder ---------------------------------------------------------------------------

BASE = "http://127.0.0.1:9/prefix"
segment_text = st.text(min_size=1, max_size=40)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(segment_text, min_size=1, max_size=6))
def test_any_segment_stays_one_segment(segments: list[str]) -> None:
    url = _paths.join_url(BASE, tuple(segments))

    parts = urlsplit(url)
    assert parts.query == "" and parts.fragment == ""
    built = parts.path.split("/")[2:]  # after the leading "" and the base's "prefix"
    assert len(built) == len(segments)
    assert [unquote(p) for p in built] == segments
    assert all(p.strip(".") for p in built)  # no dot segment for a server to resolve
    # What the client really sends: httpx keeps the path as built (no dot-segment removal, no decoding).
    sent_url = httpx.URL(url)
    assert sent_url.query == b"" and sent_url.fragment == ""
    assert sent_url.raw_path.decode() == parts.path


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.integers(), st.booleans(), st.none(), st.floats()))
def test_a_graph_id_is_exactly_ascii_digits(value: Any) -> None:
    expected_ok = (
        isinstance(value, str) and value.isascii() and value.isdigit() and 1 <= len(value) <= 32
    ) or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**32)
    try:
        checked = _paths.check_graph_id("media_id", value)
    except WhatsAppValidationError as error:
        assert not expected_ok
        assert str(error).startswith("media_id: ")
    else:
        assert expected_ok
        assert checked == str(value)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_a_generic_graph_path_is_checked_segment_by_segment(graph_path: str) -> None:
    try:
        segments = _paths.split_graph_path(graph_path)
    except WhatsAppValidationError as error:
        assert str(error).startswith("graph_path: ")
        return
    assert "/".join(segments) == graph_path.removeprefix("/")
    url = _paths.graph_url(BASE, "whatsapp-business", "v21.0", segments)
    assert urlsplit(url).path.split("/")[4:] == list(segments)  # nothing needed encoding


@pytest.mark.parametrize("segment", [".", "..", "...", "%2e%2e", "a/b", "?", "#", "%", " "])
def test_a_missed_check_still_cannot_steer_a_request_on_the_wire(
    loopback: LoopbackServer, segment: str
) -> None:
    loopback.route("GET", r".*", Reply(json={}))
    url = _paths.graph_url(loopback.url, "whatsapp-business", "v21.0", ("123", segment, "edge"))

    httpx.get(url, timeout=10)

    (request,) = loopback.requests
    path = request.path.split("/")
    assert path[:4] == ["", "whatsapp-business", "v21.0", "123"]
    assert len(path) == 6 and path[5] == "edge"
    assert unquote(path[4]) == segment
    assert request.query == {}


def test_empty_and_unencodable_segments_are_refused() -> None:
    with pytest.raises(WhatsAppValidationError, match="empty segment"):
        _paths.join_url(BASE, ("123", ""))
    with pytest.raises(WhatsAppValidationError, match="surrogate"):
        _paths.join_url(BASE, ("\ud800",))


def test_error_messages_stay_short_for_huge_values() -> None:
    with pytest.raises(WhatsAppValidationError) as raised:
        _paths.check_graph_id("media_id", "9" * 1_000_000 + "x")
    assert len(str(raised.value)) < 300
    assert "1000001 characters" in str(raised.value)


def test_a_huge_integer_is_refused_without_converting_it() -> None:
    with pytest.raises(WhatsAppValidationError, match=r"^media_id: an integer of more than 40 digits"):
        _paths.check_graph_id("media_id", 10**100_000)


def test_unknown_id_field_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not an id argument"):
        _paths.check_id("recipient", "1")


HUGE = 10**5000  # str() of it raises ValueError (Python's int-to-text digit limit)


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("phone_number_id", lambda hook: hook.send_message(TEXT, phone_number_id=HUGE)),
        ("phone_number_id", lambda hook: hook.get_phone_number(phone_number_id=HUGE)),
        ("phone_number_id", lambda hook: hook.get_business_profile(phone_number_id=HUGE)),
        ("phone_number_id", lambda hook: asyncio.run(hook.asend_message(TEXT, phone_number_id=HUGE))),
        ("waba_id", lambda hook: hook.list_templates(waba_id=HUGE)),
        ("waba_id", lambda hook: hook.list_phone_numbers(waba_id=HUGE)),
        ("waba_id", lambda hook: hook.delete_template("daily_report", waba_id=HUGE)),
    ],
)
def test_a_huge_integer_id_override_is_refused_naming_the_field(
    maton_conn: LoopbackServer, field: str, call: Callable[[MatonHook], Any]
) -> None:
    _route_everything(maton_conn)

    with pytest.raises(WhatsAppValidationError, match=rf"^{field}: an integer of more than 40 digits"):
        call(MatonHook())

    assert maton_conn.requests == []
