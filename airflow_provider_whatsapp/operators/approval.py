"""Ask one or more approvers on WhatsApp, with approve/reject reply buttons, and wait for the first answer."""

from __future__ import annotations

import functools
import hashlib
import time
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import default_deferrable
from airflow_provider_whatsapp.operators._base import WhatsAppBaseOperator, is_concrete
from airflow_provider_whatsapp.operators._confirm import nothing_sent_again, resume_without_resending

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_whatsapp.messages import ButtonsMessage
    from airflow_provider_whatsapp.webhooks.store import EventStore

APPROVE = "approve"
REJECT = "reject"
TIMEOUT = "timeout"
#: What a reject does to the task: skip it (and, by default trigger rules, everything downstream) or fail it.
ON_REJECT = ("skip", "fail")
#: What a timeout counts as.
TIMEOUT_DEFAULTS = (REJECT, APPROVE, "fail")


class WhatsAppApprovalOperator(WhatsAppBaseOperator):
    """Send a question with approve/reject reply buttons to each approver and wait for the first answer.

    The answer of a listed approver to one of the messages sent decides; an answer from any other
    number, or a tap on an earlier run's buttons, is ignored (and logged). The waiting happens in the
    triggerer (``deferrable=True``, no worker slot held) or in the worker. Resuming never sends again.

    Returns (XCom) ``{"approved", "decision", "by", "at", "wamid", "message_id"}``: ``decision`` is
    ``approve``, ``reject`` or ``timeout``; ``by`` the approver's number (digits) or ``None``; ``at``
    the answer's time (ISO-8601, UTC); ``wamid`` the answer's id; ``message_id`` the question answered.
    A reject raises ``AirflowSkipException`` (``on_reject="skip"``: downstream tasks are skipped) or
    fails the task (``"fail"``); the result is pushed to XCom first either way. When every question
    failed to deliver (e.g. 131047: the approver has not written within 24 hours, as reply buttons are
    free-form), the task fails with that error instead of waiting for an answer that cannot come.

    :param to: the approvers: a phone number, a comma-separated string or a list (templated).
    :param body: the question (templated).
    :param approve_label: the approve button's title (templated).
    :param reject_label: the reject button's title (templated).
    :param header: an optional text header (templated).
    :param footer: an optional footer (templated).
    :param on_reject: ``"skip"`` or ``"fail"``.
    :param timeout: how long to wait for an answer.
    :param timeout_default: what no answer counts as: ``"reject"``, ``"approve"`` or ``"fail"``.
    :param poke_interval: seconds between two looks at the event store.
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``. Once a
        question went out, nothing ends the task with an error Airflow retries (a retry would ask every
        approver again): a failed trigger or a broken wait fails it. With ``deferrable=False`` the worker
        waits, and a worker killed while waiting (OOM, node lost, a deploy) is retried by Airflow, which
        asks the approvers again: that is inherent to waiting in the worker. Prefer ``deferrable=True``,
        or set ``retries=0`` on the task.
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "to",
        "body",
        "approve_label",
        "reject_label",
        "header",
        "footer",
    )

    def __init__(
        self,
        *,
        to: str | list[str],
        body: str,
        approve_label: str = "Approve",
        reject_label: str = "Reject",
        header: str | None = None,
        footer: str | None = None,
        on_reject: str = "skip",
        timeout: timedelta = timedelta(hours=24),
        timeout_default: str = REJECT,
        poke_interval: float = 10.0,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.body = body
        self.approve_label = approve_label
        self.reject_label = reject_label
        self.header = header
        self.footer = footer
        self.on_reject = on_reject
        self.timeout = timeout
        self.timeout_default = timeout_default
        self.poke_interval = float(poke_interval)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._check_options()
        if is_concrete(to):
            self._approvers()
        fields = (body, approve_label, reject_label, header, footer)
        if all(is_concrete(value) for value in fields):
            self.build_question(("approve-id", "reject-id"))

    def _check_options(self) -> None:
        from airflow_provider_whatsapp.errors import WhatsAppValidationError

        if self.on_reject not in ON_REJECT:
            raise WhatsAppValidationError(
                f"on_reject: {self.on_reject!r} is not one of {', '.join(ON_REJECT)}"
            )
        if self.timeout_default not in TIMEOUT_DEFAULTS:
            raise WhatsAppValidationError(
                f"timeout_default: {self.timeout_default!r} is not one of {', '.join(TIMEOUT_DEFAULTS)}"
            )
        if not isinstance(self.timeout, timedelta) or self.timeout <= timedelta(0):
            raise WhatsAppValidationError(f"timeout: {self.timeout!r} is not a positive timedelta")
        if not self.poke_interval > 0:
            raise WhatsAppValidationError(f"poke_interval: {self.poke_interval!r} is not a positive number")

    def _approvers(self) -> list[str]:
        from airflow_provider_whatsapp.sensors.reply import normalize_senders

        return normalize_senders("to", self.to)

    def build_question(self, button_ids: tuple[str, str]) -> ButtonsMessage:
        """The reply-buttons message; raises ``WhatsAppValidationError`` naming the field and the limit."""
        from airflow_provider_whatsapp.messages import ButtonsMessage

        approve_id, reject_id = button_ids
        return ButtonsMessage.build(
            body=self.body,
            header=self.header or None,
            footer=self.footer or None,
            buttons=[
                {"id": approve_id, "title": self.approve_label},
                {"id": reject_id, "title": self.reject_label},
            ],
        )

    @cached_property
    def store(self) -> EventStore:
        """The event store the connection's extras name, opened on first use at run time."""
        from airflow_provider_whatsapp.webhooks.store import EventStore

        return EventStore.for_connection(self.maton_conn_id)

    def execute(self, context: Any) -> Any:
        from airflow_provider_whatsapp.redact import mask_phone_number

        # Everything is checked before the first send; the store is opened before it too, so a
        # misconfigured events location fails before anyone is asked.
        button_ids = button_ids_for(context)
        question = self.build_question(button_ids)
        approvers = self._approvers()
        description = self.store.describe()
        sent: list[str] = []
        failures: list[Exception] = []
        for approver in approvers:
            try:
                wamid = self.hook.message_id(self.hook.send_message(question.to_payload(approver)))
            except Exception as error:
                # The others may still answer: one unreachable approver must not block the decision.
                failures.append(error)
                self.log.warning("Could not ask %s: %s", mask_phone_number(approver), error)
                continue
            sent.append(wamid)
            self.log.info("Asked %s for approval: %s", mask_phone_number(approver), wamid)
        if not sent:
            raise retry_only_if_nobody_asked(failures)
        with nothing_sent_again(f"The approval question ({', '.join(sent)})"):
            ends_at = time.time() + self.timeout.total_seconds()
            if not self.deferrable:
                return self._wait_here(context, sent, approvers, button_ids, ends_at)
            from airflow_provider_whatsapp.triggers.reply import WhatsAppReplyTrigger

            self.defer(
                trigger=WhatsAppReplyTrigger(
                    message_ids=sent,
                    allowed_senders=approvers,
                    button_ids=list(button_ids),
                    store=description,
                    poke_interval=self.poke_interval,
                    end_time=ends_at,
                ),
                method_name="execute_complete",
            )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """Resume after the reply trigger; a failed trigger fails the task for good, as a retry would ask
        every approver again."""
        resume = functools.partial(super().resume_execution, next_method, next_kwargs, context)
        return resume_without_resending(
            resume,
            next_method=next_method,
            next_kwargs=next_kwargs,
            log=self.log,
            sent="The approval question this task sent before it deferred",
        )

    def _wait_here(
        self, context: Any, sent: list[str], approvers: list[str], button_ids: tuple[str, str], ends_at: float
    ) -> Any:
        from airflow_provider_whatsapp.triggers._events import tolerant, wait_blocking
        from airflow_provider_whatsapp.triggers.reply import assess, log_ignored, outcome_payload

        logged: set[str] = set()

        def look() -> dict[str, Any] | None:
            found = assess(self.store, sent, allowed_senders=approvers, button_ids=button_ids)
            log_ignored(self.log, found.ignored, logged)
            return outcome_payload(found)

        payload = wait_blocking(tolerant(look, self.log), poke_interval=self.poke_interval, end_time=ends_at)
        return self._settle(context, payload, button_ids)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's one event into the decision; nothing is sent again. The button ids are
        derived again from the context: the same task instance and try give the same ids."""
        return self._settle(context, event, button_ids_for(context))

    def _settle(self, context: Any, payload: dict[str, Any] | None, button_ids: tuple[str, str]) -> Any:
        from airflow_provider_whatsapp._compat import AirflowFailException
        from airflow_provider_whatsapp.triggers._events import TIMEOUT as WAIT_TIMEOUT
        from airflow_provider_whatsapp.triggers.reply import reply_from

        if payload is None or payload.get("status") == WAIT_TIMEOUT:
            return self._decide(context, timeout_result())
        # A timeout was handled above; a failed question or an unreadable store raises here.
        reply, message_id = reply_from(payload, on_timeout=AirflowFailException)
        return self._decide(context, answer_result(reply, message_id, button_ids))

    def _decide(self, context: Any, result: dict[str, Any]) -> dict[str, Any]:
        from airflow_provider_whatsapp._compat import AirflowFailException, AirflowSkipException
        from airflow_provider_whatsapp.redact import mask_phone_number

        decision = result["decision"]
        if decision == TIMEOUT:
            self.log.info(
                "No approver answered within %s; counting it as %s", self.timeout, self.timeout_default
            )
            if self.timeout_default == "fail":
                raise AirflowFailException(f"No approver answered within {self.timeout}.")
            result["approved"] = self.timeout_default == APPROVE
        else:
            self.log.info("%s answered %s at %s", mask_phone_number(result["by"]), decision, result["at"])
        if result["approved"]:
            return result
        # A skipped or failed task pushes no return value: push it here, so a task that runs anyway
        # (trigger_rule="all_done") can read who rejected, and when.
        context["ti"].xcom_push(key="return_value", value=result)
        who = f"by {mask_phone_number(result['by'])}" if result["by"] else f"(no answer: {TIMEOUT})"
        if self.on_reject == "fail":
            raise AirflowFailException(f"Rejected {who}.")
        raise AirflowSkipException(f"Rejected {who}; downstream tasks are skipped.")


def retry_only_if_nobody_asked(failures: list[Exception]) -> Exception:
    """The error for a question that reached no approver for certain.

    A retry asks everyone again, so a retryable error may end the task only when every send provably
    did not take effect (Graph refused it). When one may have reached its approver (the answer was lost:
    ``WhatsAppDeliveryUnknownError``, or an error the provider does not know), the task fails for good,
    chained from that failure, and names every failure.
    """
    from airflow_provider_whatsapp.errors import WhatsAppDeliveryUnknownError, WhatsAppError

    # Graph refused the others (retryable or permanent alike): those questions provably did not go.
    unsure: list[Exception] = [
        error
        for error in failures
        if isinstance(error, WhatsAppDeliveryUnknownError) or not isinstance(error, WhatsAppError)
    ]
    if not unsure:
        retryable = [error for error in failures if getattr(error, "retryable", False)]
        return (retryable or failures)[-1]
    said = "; ".join(f"{type(error).__name__}: {error}" for error in failures)
    failure = WhatsAppDeliveryUnknownError(
        f"No approver was asked for certain, and {len(unsure)} of the {len(failures)} questions may have "
        f"arrived. Nobody is asked again: the task fails without Airflow retries ({said[:1000]})."
    )
    failure.__cause__ = unsure[0]
    return failure


def button_ids_for(context: Any) -> tuple[str, str]:
    """Approve and reject button ids unique to this task instance and try.

    A tap on an earlier run's (or try's) message carries that message's ids, so it cannot decide this
    one; the ids are a digest, so they reveal nothing of the DAG.
    """
    ti = context["ti"]
    key = "|".join(
        str(part) for part in (ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), ti.try_number)
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"airflow-approval:{digest}:{APPROVE}", f"airflow-approval:{digest}:{REJECT}"


def answer_result(reply: Any, message_id: str | None, button_ids: tuple[str, str]) -> dict[str, Any]:
    """The operator's result for an approver's tap on one of ``button_ids`` (approve, reject)."""
    if reply.button_id not in button_ids:
        from airflow_provider_whatsapp.errors import WhatsAppPermanentError

        raise WhatsAppPermanentError(f"The answer {reply.wamid} is not a tap on this task's buttons.")
    approved = reply.button_id == button_ids[0]
    return {
        "approved": approved,
        "decision": APPROVE if approved else REJECT,
        "by": reply.sender,
        "at": reply.as_reply()["timestamp"],
        "wamid": reply.wamid,
        "message_id": message_id,
    }


def timeout_result() -> dict[str, Any]:
    """The operator's result when nobody answered in time (``approved`` set from ``timeout_default``)."""
    return {
        "approved": False,
        "decision": TIMEOUT,
        "by": None,
        "at": datetime.now(tz=timezone.utc).isoformat(),
        "wamid": None,
        "message_id": None,
    }
