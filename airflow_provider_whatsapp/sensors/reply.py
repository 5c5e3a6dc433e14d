"""Wait for the answer to a sent message (a button tap, a list choice, a text quoting it)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import BaseSensorOperator, default_deferrable
from airflow_provider_whatsapp.operators._base import is_concrete

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_whatsapp._compat import PokeReturnValue
    from airflow_provider_whatsapp.webhooks.store import EventStore


def normalize_senders(field: str, value: Any) -> list[str]:
    """Phone numbers as digits, in order, without repeats: one number, a comma-separated string or a list.

    :raises WhatsAppValidationError: naming ``field`` when a value is not a phone number (or none is given).
    """
    from airflow_provider_whatsapp.errors import WhatsAppValidationError
    from airflow_provider_whatsapp.messages import normalize_recipient

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise WhatsAppValidationError(f"{field}: {value!r} is not a phone number or a list of phone numbers.")
    numbers: list[str] = []
    for index, item in enumerate(items):
        try:
            digits = str(normalize_recipient(item.strip() if isinstance(item, str) else item))
        except WhatsAppValidationError as error:
            # The model's message starts with "to:"; this field has its own name.
            problem = str(error).split(": ", 1)[-1]
            raise WhatsAppValidationError(f"{field}[{index}]: {problem}") from None
        if digits not in numbers:
            numbers.append(digits)
    if not numbers:
        raise WhatsAppValidationError(f"{field}: no phone number given; give at least one.")
    return numbers


class WhatsAppReplySensor(BaseSensorOperator):
    """Wait for the reply to a sent message; returns it normalised (XCom): ``from``, ``type``, ``text``,
    ``button_id``, ``button_title``, ``row_id``, ``wamid``, ``timestamp`` (ISO-8601, UTC).

    A reply is an inbound message that answers ``message_id``: a reply-button tap, a list choice, or a
    text quoting it. Only the message's recipient's reply counts (known from the message's status
    webhooks: until one has arrived, nobody's does), unless ``allowed_senders`` lists other numbers;
    other replies are logged and ignored. When the message failed (a ``failed`` status), the sensor
    fails at once with the typed error for its code. Replies reach Airflow through the webhook receiver,
    which must be set up (see the README's "Conversations" section).

    :param message_id: the wamid of the sent message, e.g. a send operator's XCom (templated).
    :param allowed_senders: numbers besides the recipient whose reply counts (templated).
    :param maton_conn_id: Airflow connection of type ``maton``; its extras say where the events are.
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("message_id", "allowed_senders")
    ui_color = "#25D366"

    def __init__(
        self,
        *,
        message_id: str,
        allowed_senders: str | list[str] | None = None,
        maton_conn_id: str = "maton_default",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.message_id = message_id
        self.allowed_senders = allowed_senders
        self.maton_conn_id = maton_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        if is_concrete(message_id):
            from airflow_provider_whatsapp.operators._confirm import check_message_id

            check_message_id("message_id", message_id)
        if allowed_senders and is_concrete(allowed_senders):
            normalize_senders("allowed_senders", allowed_senders)
        self._logged: set[str] = set()

    @cached_property
    def store(self) -> EventStore:
        """The event store the connection's extras name, opened on first use at run time."""
        from airflow_provider_whatsapp.webhooks.store import EventStore

        return EventStore.for_connection(self.maton_conn_id)

    def _question(self) -> tuple[str, list[str]]:
        from airflow_provider_whatsapp.operators._confirm import check_message_id

        message_id = check_message_id("message_id", self.message_id)
        senders = normalize_senders("allowed_senders", self.allowed_senders) if self.allowed_senders else []
        return message_id, senders

    def _timeout_error(self, message: str) -> BaseException:
        from airflow_provider_whatsapp._compat import AirflowSensorTimeout, AirflowSkipException

        return AirflowSkipException(message) if self.soft_fail else AirflowSensorTimeout(message)

    def poke(self, context: Any) -> bool | PokeReturnValue:
        from airflow_provider_whatsapp._compat import PokeReturnValue
        from airflow_provider_whatsapp.triggers._events import tolerant
        from airflow_provider_whatsapp.triggers.reply import assess, log_ignored, outcome_payload, reply_from

        message_id, senders = self._question()

        def look() -> dict[str, Any] | None:
            found = assess(self.store, [message_id], allowed_senders=senders)
            log_ignored(self.log, found.ignored, self._logged)
            return outcome_payload(found)

        payload = tolerant(look, self.log)()
        if payload is None:
            self.log.info("No reply to %s yet", message_id)
            return False
        reply, _ = reply_from(payload, on_timeout=self._timeout_error)
        self.log.info("Message %s was answered: %s", message_id, reply.wamid)
        return PokeReturnValue(is_done=True, xcom_value=reply.as_reply())

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        # One look first: a reply already stored needs no trip to the triggerer.
        done = self.poke(context)
        if done:
            return getattr(done, "xcom_value", None)
        from airflow_provider_whatsapp.triggers._events import end_time_after
        from airflow_provider_whatsapp.triggers.reply import WhatsAppReplyTrigger

        message_id, senders = self._question()
        self.defer(
            trigger=WhatsAppReplyTrigger(
                message_ids=[message_id],
                allowed_senders=senders,
                store=self.store.describe(),
                poke_interval=float(self.poke_interval),
                end_time=end_time_after(float(self.timeout) if self.timeout else None),
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Turn the trigger's one event into the task's result or failure."""
        from airflow_provider_whatsapp.triggers.reply import reply_from

        reply, _ = reply_from(event, on_timeout=self._timeout_error)
        self.log.info("Message %s was answered: %s", self.message_id, reply.wamid)
        return reply.as_reply()
