"""The deferrable half of the template approval sensor: polls from the triggerer, async."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import BaseTrigger, TriggerEvent
from airflow_provider_whatsapp.spec.vocabulary import (
    TEMPLATE_APPROVED,
    TEMPLATE_FAILED_STATUS_ADVICE,
    TEMPLATE_FAILED_STATUSES,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# Outcomes of one look at a template (also the ``status`` of the trigger's event).
APPROVED = "approved"
FAILED = "failed"
WAITING = "waiting"
TIMEOUT = "timeout"
ERROR = "error"


def template_summary(template: dict[str, Any]) -> dict[str, Any]:
    """What the sensor returns (XCom) for a template: id, status, category, name and language."""
    return {
        "id": template.get("id"),
        "status": template.get("status"),
        "category": template.get("category"),
        "name": template.get("name"),
        "language": template.get("language"),
    }


def assess(
    templates: list[dict[str, Any]], template_name: str, language_code: str | None
) -> tuple[str, dict[str, Any] | None]:
    """Decide from a template listing whether the template is approved, failed or still to wait for.

    With no language given, every language of the name counts: approved once all of them are, failed
    as soon as one of them has failed.
    """
    matching = [
        t
        for t in templates
        if t.get("name") == template_name and (language_code is None or t.get("language") == language_code)
    ]
    if not matching:
        return WAITING, None  # not visible yet (just created, or another WABA)
    for template in matching:
        if str(template.get("status", "")).upper() in TEMPLATE_FAILED_STATUSES:
            return FAILED, template
    for template in matching:
        if str(template.get("status", "")).upper() != TEMPLATE_APPROVED:
            return WAITING, template
    return APPROVED, matching[0]


def describe_failure(template: dict[str, Any]) -> str:
    """A readable reason for a template that will not be approved."""
    status = template.get("status")
    reason = template.get("rejected_reason")
    text = f"Template {template.get('name')!r} ({template.get('language')}) is {status}"
    if reason and reason != "NONE":
        text += f": rejected_reason {reason}"
    hint = TEMPLATE_FAILED_STATUS_ADVICE.get(str(status))
    return f"{text}. {hint[0].upper() + hint[1:]}." if hint else f"{text}."


class WhatsAppTemplateApprovalTrigger(BaseTrigger):
    """Poll a template's review status until it is approved, fails, or the end time passes.

    Yields exactly one event: ``{"status": "approved" | "failed" | "timeout" | "error", ...}``.
    Serialised with the connection id only: the API key is read from the connection in the triggerer.

    :param template_name: the template's name.
    :param language_code: only this language; ``None`` means every language of the name.
    :param maton_conn_id: Airflow connection of type ``maton``.
    :param connection_id: Maton connection (``Maton-Connection``), if not the connection's default.
    :param waba_id: WhatsApp Business Account, if not the connection's default.
    :param poke_interval: seconds between two looks.
    :param end_time: epoch seconds after which a ``timeout`` event is yielded; ``None`` waits forever.
    """

    def __init__(
        self,
        *,
        template_name: str,
        language_code: str | None = None,
        maton_conn_id: str = "maton_default",
        connection_id: str | None = None,
        waba_id: str | None = None,
        poke_interval: float = 60.0,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.template_name = template_name
        self.language_code = language_code
        self.maton_conn_id = maton_conn_id
        self.connection_id = connection_id
        self.waba_id = waba_id
        self.poke_interval = float(poke_interval)
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "template_name": self.template_name,
                "language_code": self.language_code,
                "maton_conn_id": self.maton_conn_id,
                "connection_id": self.connection_id,
                "waba_id": self.waba_id,
                "poke_interval": self.poke_interval,
                "end_time": self.end_time,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_whatsapp.hooks.maton import MatonHook

        hook = MatonHook(self.maton_conn_id, connection_id=self.connection_id, waba_id=self.waba_id)
        try:
            yield TriggerEvent(await self._wait(hook))
        finally:
            await hook.aclose()

    async def _wait(self, hook: Any) -> dict[str, Any]:
        from airflow_provider_whatsapp.errors import WhatsAppError
        from airflow_provider_whatsapp.hooks._deadline import deadline

        base = {"template_name": self.template_name, "language_code": self.language_code}
        # A look at a slow server must not outlast the end time: no request runs past it.
        ends_at = None if self.end_time is None else time.monotonic() + (self.end_time - time.time())
        while True:
            try:
                with deadline(ends_at):
                    templates = await hook.alist_templates(
                        name=self.template_name, language=self.language_code, waba_id=self.waba_id
                    )
            except WhatsAppError as error:
                if not error.retryable:
                    return {**base, "status": ERROR, "message": str(error)}
                # The hook already retried; a long wait should not end on a passing outage.
                self.log.warning("Could not read template %s yet: %s", self.template_name, error)
            else:
                outcome, template = assess(templates, self.template_name, self.language_code)
                if outcome == APPROVED and template is not None:
                    return {**base, "status": APPROVED, "template": template_summary(template)}
                if outcome == FAILED and template is not None:
                    return {
                        **base,
                        "status": FAILED,
                        "template": template_summary(template),
                        "message": describe_failure(template),
                    }
                shown = template.get("status") if template else "not visible yet"
                self.log.info(
                    "Template %s is %s; next look in %.0f s", self.template_name, shown, self.poke_interval
                )
            delay = self.poke_interval
            if self.end_time is not None:
                remaining = self.end_time - time.time()
                if remaining <= 0:
                    return {
                        **base,
                        "status": TIMEOUT,
                        "message": f"Template {self.template_name!r} was not approved before the sensor's "
                        "timeout.",
                    }
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
