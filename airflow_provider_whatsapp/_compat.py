"""The differences between Airflow 2.11 and Airflow 3.x, kept in one place.

Everything else in the provider imports Airflow's base classes, exceptions and helpers from here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

AIRFLOW_V_3_PLUS = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.0.0")
#: Whether this Airflow schedules DAGs on asset events fired by triggers (``AssetWatcher``).
EVENT_TRIGGERS = AIRFLOW_V_3_PLUS

if TYPE_CHECKING or AIRFLOW_V_3_PLUS:
    from airflow.sdk import BaseHook, BaseNotifier, BaseOperator, BaseSensorOperator, ObjectStoragePath
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR as TRIGGER_FAILED_METHOD
    from airflow.sdk.bases.sensor import PokeReturnValue
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferred,
    )
    from airflow.sdk.log import mask_secret
else:  # Airflow 2.11
    from airflow.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferred,
    )
    from airflow.hooks.base import BaseHook
    from airflow.io.path import ObjectStoragePath
    from airflow.models import BaseOperator
    from airflow.notifications.basenotifier import BaseNotifier
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
    from airflow.utils.log.secrets_masker import mask_secret

    #: The ``next_method`` a task resumes with when its trigger failed (Airflow 2.11 spells it inline).
    TRIGGER_FAILED_METHOD = "__fail__"

if TYPE_CHECKING:
    import jinja2
    from airflow.plugins_manager import AirflowPlugin
    from airflow.sdk import Connection
    from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent


def __getattr__(name: str) -> Any:
    # The trigger base classes live in the same module on both lines, but importing it costs every DAG
    # parse that imports an operator; only the triggerer (and a deferring task) needs them.
    if name in ("BaseTrigger", "TriggerEvent"):
        from airflow.triggers import base

        return getattr(base, name)
    if name == "AirflowPlugin":  # only the plugins manager imports the plugin module
        from airflow.plugins_manager import AirflowPlugin

        return AirflowPlugin
    if name == "BaseEventTrigger":
        # Event-driven scheduling (AssetWatcher) is Airflow 3's. On 2.11 a subclass still defines, so a
        # module declaring one imports; EVENT_TRIGGERS tells its constructor to refuse with a clear error.
        from airflow.triggers import base

        return getattr(base, "BaseEventTrigger", base.BaseTrigger)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def quiet_httpx_request_logs() -> None:
    """Keep httpx's per-request ``HTTP Request: POST ...`` INFO lines out of task logs on Airflow 2.

    Airflow 3's logging configuration sets the ``httpx`` logger to WARNING; Airflow 2's does not, so
    every send would log its URL. A level the deployment set itself is left alone.
    """
    httpx_logger = logging.getLogger("httpx")
    if not AIRFLOW_V_3_PLUS and httpx_logger.level == logging.NOTSET:
        httpx_logger.setLevel(logging.WARNING)


# Here, not in the hook: every module that talks HTTP imports this one first, and it is cheap.
quiet_httpx_request_logs()


def mask_key(secret: str) -> None:
    """Register a secret with Airflow's masker, in this process and in the one writing the task log.

    On Airflow 3 the task's log file is written by the task supervisor, a separate process:
    ``airflow.sdk.log.mask_secret`` masks here and sends the value to that supervisor. (``dag.test()``
    runs the supervisor in-process and logs that message, value included, at DEBUG, as it does for
    every connection password Airflow masks itself.) On Airflow 2.11 the task process writes its log.
    """
    mask_secret(secret)


async def amask_key(secret: str) -> None:
    """:func:`mask_key` from async code: on Airflow 3 it must not block the event loop's supervisor
    channel (the triggerer's, or a task's with other sends in flight)."""
    if AIRFLOW_V_3_PLUS:
        try:
            from airflow.sdk.log import amask_secret
        except ImportError:  # Airflow 3 releases before the async variant
            pass
        else:
            await amask_secret(secret)
            return
    mask_secret(secret)


def get_connection(conn_id: str) -> Connection:
    """Read a connection live; raises ``AirflowNotFoundException`` when it is not defined."""
    return BaseHook.get_connection(conn_id)


async def aget_connection(conn_id: str) -> Connection:
    """Read a connection from async code (the triggerer) without blocking its event loop."""
    if AIRFLOW_V_3_PLUS:
        return await BaseHook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(BaseHook.get_connection)(conn_id)


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from the Airflow configuration."""
    from airflow.configuration import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


def redact_text(text: str) -> str:
    """``text`` with every secret registered with Airflow's masker replaced by ``***``.

    For text that leaves through a sink Airflow's log masker never sees (e.g. a WhatsApp message).
    """
    if AIRFLOW_V_3_PLUS:
        from airflow.sdk.log import redact
    else:
        from airflow.utils.log.secrets_masker import redact  # type: ignore[no-redef]
    redacted = redact(text)
    return redacted if isinstance(redacted, str) else text


def notifier_init_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments ``BaseNotifier.__init__`` takes: Airflow 3's takes ``context``, 2.11's none."""
    return kwargs if AIRFLOW_V_3_PLUS else {}


def render_template_field(templater: Any, name: str, context: Any, jinja_env: jinja2.Environment) -> None:
    """Render one template field of ``templater`` in place (it raises for that field alone).

    Both lines have the same ``Templater._do_render_template_fields``; it is private, so its one use
    lives here.
    """
    templater._do_render_template_fields(templater, [name], context, jinja_env, set())


def airflow_home() -> str:
    """``$AIRFLOW_HOME`` as Airflow resolved it."""
    from airflow.configuration import AIRFLOW_HOME

    return AIRFLOW_HOME


def connection_extra(conn: Any) -> dict[str, Any]:
    """A connection's extra as a dict on both versions (empty when unset or not JSON)."""
    try:
        extra = conn.extra_dejson
    except Exception:
        return {}
    return extra if isinstance(extra, dict) else {}


def api_server_apps(build: Any) -> list[Any]:
    """A plugin's ``fastapi_apps``: ``build()`` on Airflow 3, whose API server serves them; none on 2.11."""
    return build() if AIRFLOW_V_3_PLUS else []


def object_storage_conn_id(path: Any) -> str | None:
    """The connection an ``ObjectStoragePath`` was made with: an attribute on Airflow 3, a storage option
    on 2.11."""
    conn_id = getattr(path, "conn_id", None)
    if conn_id is None:
        conn_id = (getattr(path, "storage_options", None) or {}).get("conn_id")
    return conn_id


__all__ = [
    "AIRFLOW_V_3_PLUS",
    "EVENT_TRIGGERS",
    "TRIGGER_FAILED_METHOD",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowPlugin",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "BaseEventTrigger",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "ObjectStoragePath",
    "PokeReturnValue",
    "TaskDeferred",
    "TriggerEvent",
    "aget_connection",
    "amask_key",
    "api_server_apps",
    "connection_extra",
    "default_deferrable",
    "get_connection",
    "mask_key",
    "mask_secret",
    "object_storage_conn_id",
    "quiet_httpx_request_logs",
]
