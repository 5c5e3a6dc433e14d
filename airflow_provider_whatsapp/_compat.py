"""The differences between Airflow 2.11 and Airflow 3.x, kept in one place.

Everything else in the provider imports Airflow's base classes, exceptions and helpers from here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

AIRFLOW_V_3_PLUS = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.0.0")

if TYPE_CHECKING or AIRFLOW_V_3_PLUS:
    from airflow.sdk import BaseHook, BaseNotifier, BaseOperator, BaseSensorOperator, ObjectStoragePath
    from airflow.sdk.bases.sensor import PokeReturnValue
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
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
        TaskDeferred,
    )
    from airflow.hooks.base import BaseHook
    from airflow.io.path import ObjectStoragePath
    from airflow.models import BaseOperator
    from airflow.notifications.basenotifier import BaseNotifier
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
    from airflow.utils.log.secrets_masker import mask_secret

if TYPE_CHECKING:
    from airflow.sdk import Connection


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
    """Register a secret with this process's log masker.

    On Airflow 3 the public ``mask_secret`` also sends the value to the task supervisor, and the
    in-process supervisor that ``dag.test()`` uses logs that message, value and all, at DEBUG. The
    supervisor never logs the API key itself, so masking it in this process is what counts.
    """
    if not AIRFLOW_V_3_PLUS:
        mask_secret(secret)
        return
    try:
        from airflow.sdk._shared.secrets_masker import mask_secret as mask_in_this_process
    except ImportError:  # a later layout: the public call is still correct, if chattier
        mask_in_this_process = mask_secret
    mask_in_this_process(secret)


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


def connection_extra(conn: Any) -> dict[str, Any]:
    """A connection's extra as a dict on both versions (empty when unset or not JSON)."""
    try:
        extra = conn.extra_dejson
    except Exception:
        return {}
    return extra if isinstance(extra, dict) else {}


__all__ = [
    "AIRFLOW_V_3_PLUS",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "BaseSensorOperator",
    "ObjectStoragePath",
    "PokeReturnValue",
    "TaskDeferred",
    "aget_connection",
    "connection_extra",
    "default_deferrable",
    "get_connection",
    "mask_key",
    "mask_secret",
    "quiet_httpx_request_logs",
]
