"""Wait until a sent message is sent, delivered or read, as WhatsApp's status webhooks report it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import BaseSensorOperator, default_deferrable
from airflow_provider_whatsapp.operators._base import is_concrete
from airflow_provider_whatsapp.operators._confirm import check_message_id, check_target

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_whatsapp._compat import PokeReturnValue
    from airflow_provider_whatsapp.webhooks.store import EventStore


class WhatsAppMessageStatusSensor(BaseSensorOperator):
    """Wait until a message reaches ``target`` or a later status; returns the status event (XCom):
    ``{"wamid", "status", "timestamp", "recipient_id", "phone_number_id", "errors"}``.

    The statuses come from the event store the webhook receiver writes (the ``maton`` connection's
    ``events_path``). A ``failed`` status fails the task at once, without Airflow retries, with the
    error of its Graph code: 131047 (the 24-hour window had closed) raises
    :class:`~airflow_provider_whatsapp.errors.WhatsAppReEngagementError`, which says to send a
    template. In deferrable mode the waiting happens in the triggerer, which looks every
    ``poke_interval`` seconds until ``timeout``.

    :param message_id: the wamid a send operator returned, e.g. ``"{{ ti.xcom_pull('send') }}"``
        (templated).
    :param target: ``sent``, ``delivered`` (default) or ``read``; a later status also counts.
    :param maton_conn_id: the Airflow connection of type ``maton`` whose extras locate the event store.
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("message_id",)
    ui_color = "#25D366"

    def __init__(
        self,
        *,
        message_id: str,
        target: str = "delivered",
        maton_conn_id: str = "maton_default",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_target("target", target)
        if is_concrete(message_id):
            check_message_id("message_id", message_id)
        self.message_id = message_id
        self.target = target
        self.maton_conn_id = maton_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    @cached_property
    def store(self) -> EventStore:
        """The event store of the connection, opened on first use at run time."""
        from airflow_provider_whatsapp.webhooks.store import EventStore

        return EventStore.for_connection(self.maton_conn_id)

    def poke(self, context: Any) -> bool | PokeReturnValue:
        from airflow_provider_whatsapp._compat import PokeReturnValue
        from airflow_provider_whatsapp.triggers._events import tolerant
        from airflow_provider_whatsapp.triggers.status import FAILED, failure_error, look

        message_id = check_message_id("message_id", self.message_id)
        outcome = tolerant(lambda: look(self.store, message_id, self.target), self.log)()
        if outcome is None:
            self.log.info("Message %s has not reached %s yet", message_id, self.target)
            return False
        if outcome["status"] == FAILED:
            raise failure_error(outcome)
        self.log.info("Message %s is %s", message_id, outcome["event"].get("status"))
        return PokeReturnValue(is_done=True, xcom_value=outcome["event"])

    def execute(self, context: Any) -> Any:
        from airflow_provider_whatsapp.triggers._events import end_time_after

        end_time = end_time_after(self.timeout)
        if not self.deferrable:
            return super().execute(context)
        # One look first: a message already delivered (or failed) needs no trip to the triggerer.
        done = self.poke(context)
        if done:
            return getattr(done, "xcom_value", None)
        from airflow_provider_whatsapp.triggers.status import WhatsAppMessageStatusTrigger

        self.defer(
            trigger=WhatsAppMessageStatusTrigger(
                message_id=self.message_id,
                target=self.target,
                store=self.store.describe(),
                poke_interval=float(self.poke_interval),
                end_time=end_time,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Turn the trigger's one event into the task's result or failure."""
        from airflow_provider_whatsapp.triggers.status import settle

        return settle(event, on_timeout=self._timed_out)

    def _timed_out(self, message: str) -> BaseException:
        # As every Airflow sensor: a timeout fails the task, or skips it with ``soft_fail``.
        from airflow_provider_whatsapp._compat import AirflowSensorTimeout, AirflowSkipException

        return AirflowSkipException(message) if self.soft_fail else AirflowSensorTimeout(message)
