"""Wait for Meta to approve a message template, poking or deferred to the triggerer."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import BaseSensorOperator, default_deferrable
from airflow_provider_whatsapp.operators._base import check_ids_if_concrete

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_whatsapp._compat import PokeReturnValue
    from airflow_provider_whatsapp.hooks.maton import MatonHook


class WhatsAppTemplateApprovalSensor(BaseSensorOperator):
    """Wait until a message template is APPROVED; returns ``{"id", "status", "category", "name",
    "language"}`` (XCom).

    It keeps waiting while the template is PENDING, IN_APPEAL or not visible yet, and fails at once,
    without Airflow retries, when it is REJECTED (with Meta's ``rejected_reason``), DISABLED or PAUSED.
    In deferrable mode the waiting happens in the triggerer, which looks every ``poke_interval``
    seconds until ``timeout``; a worker slot is held only at the start and the end.

    :param template_name: the template's name (templated).
    :param language_code: e.g. ``en_US``; without it every language of the name must be approved
        (templated).
    :param waba_id: WhatsApp Business Account; defaults to the connection's extra (templated).
    :param maton_conn_id: Airflow connection of type ``maton``.
    :param connection_id: Maton connection to go through; defaults to the connection's extra.
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("template_name", "language_code", "waba_id", "connection_id")
    ui_color = "#25D366"

    def __init__(
        self,
        *,
        template_name: str,
        language_code: str | None = None,
        waba_id: str | None = None,
        maton_conn_id: str = "maton_default",
        connection_id: str | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.template_name = template_name
        self.language_code = language_code
        self.waba_id = waba_id
        self.maton_conn_id = maton_conn_id
        self.connection_id = connection_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        check_ids_if_concrete(waba_id=waba_id or None, connection_id=connection_id or None)
        # ``time.monotonic()`` past which no look at the template may run (set when execute starts).
        self._poke_deadline: float | None = None

    @cached_property
    def hook(self) -> MatonHook:
        """The hook, created on first use at run time."""
        from airflow_provider_whatsapp.hooks.maton import MatonHook

        return MatonHook(
            self.maton_conn_id, connection_id=self.connection_id or None, waba_id=self.waba_id or None
        )

    def poke(self, context: Any) -> bool | PokeReturnValue:
        from airflow_provider_whatsapp._compat import PokeReturnValue
        from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppTemplateRejectedError
        from airflow_provider_whatsapp.hooks._deadline import deadline
        from airflow_provider_whatsapp.triggers.template import (
            APPROVED,
            FAILED,
            assess,
            describe_failure,
            template_summary,
        )

        try:
            with deadline(self._poke_deadline):
                templates = self.hook.list_templates(
                    name=self.template_name, language=self.language_code or None, waba_id=self.waba_id or None
                )
        except WhatsAppError as error:
            if not error.retryable:
                raise
            # The hook already retried; a long wait should not end on a passing outage.
            self.log.warning("Could not read template %s yet: %s", self.template_name, error)
            return False
        outcome, template = assess(templates, self.template_name, self.language_code or None)
        if outcome == FAILED and template is not None:
            raise WhatsAppTemplateRejectedError(describe_failure(template))
        if outcome == APPROVED and template is not None:
            self.log.info("Template %s is APPROVED (id %s)", self.template_name, template.get("id"))
            return PokeReturnValue(is_done=True, xcom_value=template_summary(template))
        shown = template.get("status") if template else "not visible yet"
        self.log.info("Template %s is %s", self.template_name, shown)
        return False

    def execute(self, context: Any) -> Any:
        # The sensor's timeout bounds every look too: a slow server cannot hold a poke past it.
        timeout = float(self.timeout) if self.timeout else None
        end_time = time.time() + timeout if timeout else None
        self._poke_deadline = time.monotonic() + timeout if timeout else None
        if not self.deferrable:
            return super().execute(context)
        # One look first: an already approved (or rejected) template needs no trip to the triggerer.
        done = self.poke(context)
        if done:
            return getattr(done, "xcom_value", None)
        from airflow_provider_whatsapp.triggers.template import WhatsAppTemplateApprovalTrigger

        self.defer(
            trigger=WhatsAppTemplateApprovalTrigger(
                template_name=self.template_name,
                language_code=self.language_code or None,
                maton_conn_id=self.maton_conn_id,
                connection_id=self.connection_id or None,
                waba_id=self.waba_id or None,
                poke_interval=float(self.poke_interval),
                end_time=end_time,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Turn the trigger's one event into the task's result or failure."""
        from airflow_provider_whatsapp._compat import AirflowSensorTimeout, AirflowSkipException
        from airflow_provider_whatsapp.errors import WhatsAppPermanentError, WhatsAppTemplateRejectedError
        from airflow_provider_whatsapp.triggers.template import APPROVED, FAILED, TIMEOUT

        event = event or {}
        status = event.get("status")
        message = str(event.get("message") or f"Unexpected event from the trigger: {event!r}")
        if status == APPROVED:
            template: dict[str, Any] = event["template"]
            self.log.info("Template %s is APPROVED (id %s)", self.template_name, template.get("id"))
            return template
        if status == FAILED:
            raise WhatsAppTemplateRejectedError(message)
        if status == TIMEOUT:
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        raise WhatsAppPermanentError(message)
