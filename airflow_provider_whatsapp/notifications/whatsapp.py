"""WhatsApp notifier for task and DAG callbacks (``on_failure_callback``, ``on_success_callback``, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import (
    BaseNotifier,
    notifier_init_kwargs,
    redact_text,
    render_template_field,
)
from airflow_provider_whatsapp.operators._base import check_ids_if_concrete, is_concrete
from airflow_provider_whatsapp.redact import mask_phone_number, scrub

if TYPE_CHECKING:
    from collections.abc import Sequence

    import jinja2
    from airflow.sdk import Context

    from airflow_provider_whatsapp.hooks.maton import MatonHook
    from airflow_provider_whatsapp.messages import OutgoingMessage


class WhatsAppNotifier(BaseNotifier):
    """Send a WhatsApp text or template when a callback fires.

    Fields are rendered with the task context, e.g. ``body="{{ dag.dag_id }}.{{ ti.task_id }} failed:
    {{ exception }}"``. Outside the 24-hour window only a template can be delivered (error 131047), so
    alerts to people who have not written recently should use ``template_name``.

    :param to: a recipient's phone number, or a list of them (each gets the message).
    :param body: the text to send (at most 4096 characters); give this or ``template_name``.
    :param template_name: an approved template to send instead of a text.
    :param language_code: the template's language.
    :param body_parameters: the template body's text parameters, in placeholder order.
    :param components: template parameter values as the Graph API takes them.
    :param preview_url: render a preview of the first URL of a text.
    :param maton_conn_id: the Airflow connection of type ``maton``.
    :param phone_number_id: business phone number to send from (default: the connection's).
    :param connection_id: Maton connection to go through (default: the connection's).
    """

    template_fields: Sequence[str] = (
        "to",
        "body",
        "template_name",
        "language_code",
        "body_parameters",
        "components",
        "phone_number_id",
        "connection_id",
    )

    def __init__(
        self,
        *,
        to: str | list[str],
        body: str | None = None,
        template_name: str | None = None,
        language_code: str = "en_US",
        body_parameters: list[Any] | None = None,
        components: list[dict[str, Any]] | None = None,
        preview_url: bool = False,
        maton_conn_id: str = "maton_default",
        phone_number_id: str | None = None,
        connection_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**notifier_init_kwargs(kwargs))
        self.to = to
        self.body = body
        self.template_name = template_name
        self.language_code = language_code
        self.body_parameters = body_parameters
        self.components = components
        self.preview_url = preview_url
        self.maton_conn_id = maton_conn_id
        self.phone_number_id = phone_number_id
        self.connection_id = connection_id
        if (body is None) == (template_name is None):
            from airflow_provider_whatsapp.errors import WhatsAppValidationError

            raise WhatsAppValidationError("WhatsAppNotifier needs exactly one of body or template_name.")
        fields = (body, template_name, language_code, body_parameters, components)
        if all(is_concrete(value) for value in fields):
            self.build_message()
        if is_concrete(to):
            self.recipients()
        check_ids_if_concrete(phone_number_id=phone_number_id or None, connection_id=connection_id or None)

    def recipients(self) -> list[str]:
        """The rendered recipients, normalised to digits."""
        from airflow_provider_whatsapp.errors import WhatsAppValidationError
        from airflow_provider_whatsapp.messages import normalize_recipient

        values = [self.to] if isinstance(self.to, (str, int)) else list(self.to or [])
        if not values:
            raise WhatsAppValidationError("to: no recipient given; WhatsAppNotifier needs at least one")
        return [normalize_recipient(value) for value in values]

    def build_message(self) -> OutgoingMessage:
        """The validated text or template message."""
        from airflow_provider_whatsapp.messages import TemplateMessage, TextMessage

        if self.template_name is not None:
            return TemplateMessage.build(
                name=self.template_name,
                language_code=self.language_code,
                body_parameters=self.body_parameters,
                components=self.components,
            )
        return TextMessage.build(body=self.body, preview_url=self.preview_url)

    def hook(self) -> MatonHook:
        """A new hook each time, so a changed connection is read again."""
        from airflow_provider_whatsapp.hooks.maton import MatonHook

        return MatonHook(
            self.maton_conn_id,
            connection_id=self.connection_id or None,
            phone_number_id=self.phone_number_id or None,
        )

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render each field on its own, so one that fails does not stop the alert.

        A field that fails to render is logged and set to ``None``; :meth:`notify` then sends a fallback
        text naming the DAG, the task, the run and the failure instead of the configured message.
        """
        if jinja_env is None:
            jinja_env = self.get_template_env(dag=context.get("dag"))
        self._unrendered: list[str] = []
        for name in self.template_fields:
            try:
                render_template_field(self, name, context, jinja_env)
            except Exception as error:
                # The error names the template's problem (e.g. "'ds' is undefined"); Airflow's log
                # masker hides any registered secret in it.
                self.log.error(
                    "WhatsAppNotifier: the field %r failed to render (%s: %s); sending a fallback message",
                    name,
                    type(error).__name__,
                    error,
                )
                self._unrendered.append(name)
                setattr(self, name, None)

    def _message_for(self, context: Context) -> OutgoingMessage:
        """The configured message, or the fallback text when it failed to render or to validate."""
        from airflow_provider_whatsapp.errors import WhatsAppValidationError
        from airflow_provider_whatsapp.messages import TextMessage

        unrendered = [name for name in getattr(self, "_unrendered", ()) if name in _MESSAGE_FIELDS]
        if not unrendered:
            try:
                return self.build_message()
            except WhatsAppValidationError as error:
                self.log.error("WhatsAppNotifier: %s; sending a fallback message", error)
                problem = "its message was invalid after rendering"
        else:
            problem = f"its {', '.join(unrendered)} failed to render"
        return TextMessage.build(body=fallback_text(context, problem))

    def _recipients(self) -> list[str]:
        if "to" in getattr(self, "_unrendered", ()):
            from airflow_provider_whatsapp.errors import WhatsAppValidationError

            raise WhatsAppValidationError("to: failed to render (see the error above); nobody to alert")
        return self.recipients()

    def notify(self, context: Context) -> None:
        """Send the message to every recipient (called by Airflow with the rendered fields).

        Each recipient is tried even when an earlier one failed; the failures are raised together after.
        """
        recipients = self._recipients()
        failures: list[tuple[str, Exception]] = []
        with self.hook() as hook:
            # Reading the connection registers its key, so the fallback text below can hide it.
            _ = hook.settings
            message = self._message_for(context)
            for recipient in recipients:
                try:
                    wamid = hook.message_id(hook.send_message(message.to_payload(recipient)))
                except Exception as error:
                    failures.append((recipient, self._log_failure(recipient, error)))
                else:
                    self._log_sent(recipient, wamid)
        _raise_failures(failures, len(recipients))

    async def async_notify(self, context: Context) -> None:
        """:meth:`notify` without blocking an event loop (Airflow 3's triggerer, deadline alerts)."""
        recipients = self._recipients()
        failures: list[tuple[str, Exception]] = []
        hook = self.hook()
        try:
            await hook.aget_settings()
            message = self._message_for(context)
            for recipient in recipients:
                try:
                    wamid = hook.message_id(await hook.asend_message(message.to_payload(recipient)))
                except Exception as error:
                    failures.append((recipient, self._log_failure(recipient, error)))
                else:
                    self._log_sent(recipient, wamid)
        finally:
            await hook.aclose()
        _raise_failures(failures, len(recipients))

    def _log_sent(self, recipient: str, wamid: str | None) -> None:
        self.log.info("WhatsApp notification sent to %s: %s", mask_phone_number(recipient), wamid)

    def _log_failure(self, recipient: str, error: Exception) -> Exception:
        self.log.error(
            "WhatsApp notification to %s failed: %s",
            mask_phone_number(recipient),
            _describe(recipient, error),
        )
        return error


def _describe(recipient: str, error: Exception) -> str:
    """An error's type and text, with the recipient's number masked and the length bounded."""
    text = str(error).replace(recipient, mask_phone_number(recipient))
    if len(text) > _FAILURE_TEXT_CHARS:
        text = text[:_FAILURE_TEXT_CHARS] + "..."
    return f"{type(error).__name__}: {text}"


def _raise_failures(failures: list[tuple[str, Exception]], total: int) -> None:
    """One error naming every recipient (masked) the alert did not reach, after all were tried.

    Permanent when every failure was permanent, so a retry does not alert the others twice for nothing.
    """
    if not failures:
        return
    from airflow_provider_whatsapp.errors import WhatsAppError, WhatsAppPermanentError

    permanent = all(isinstance(error, WhatsAppPermanentError) for _, error in failures)
    kind = WhatsAppPermanentError if permanent else WhatsAppError
    listed = "; ".join(
        f"{mask_phone_number(recipient)} ({_describe(recipient, error)})" for recipient, error in failures
    )
    raise kind(
        f"WhatsAppNotifier: {len(failures)} of {total} recipient(s) were not alerted: {listed}"
    ) from failures[0][1]


#: The fields that make up the message (``to`` and the sender are not part of it).
_MESSAGE_FIELDS = ("body", "template_name", "language_code", "body_parameters", "components")
#: How much of the exception the fallback quotes, so the text stays far below WhatsApp's limit.
_FALLBACK_EXCEPTION_CHARS = 1000
#: How much of each recipient's error the notifier's own error quotes.
_FAILURE_TEXT_CHARS = 300


def fallback_text(context: Any, problem: str) -> str:
    """What an alert says when its own message could not be built: the DAG, task, run and failure.

    :param context: the callback's context (may lack any key).
    :param problem: why the configured message was not sent, e.g. ``"body failed to render"``.
    """
    from airflow_provider_whatsapp.spec.limits import TEXT_BODY_MAX

    context = context or {}
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(context.get("dag"), "dag_id", None) or getattr(ti, "dag_id", None) or "a DAG"
    task_id = getattr(ti, "task_id", None)
    run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", None)
    where = f"{dag_id}.{task_id}" if task_id else dag_id
    if run_id:
        where += f" (run {run_id})"
    exception = context.get("exception")
    if exception is not None:
        # A WhatsApp message is a sink Airflow's log masker never sees: hide the provider's key and
        # every secret the task registered before quoting the failure (and before cutting it, so no
        # secret survives as a prefix Airflow's masker would no longer match).
        detail = redact_text(scrub(str(exception)))
        if len(detail) > _FALLBACK_EXCEPTION_CHARS:
            detail = detail[:_FALLBACK_EXCEPTION_CHARS] + "..."
        what = f"{where} failed: {detail}"
    else:
        state = getattr(ti, "state", None)
        what = f"{where}: {getattr(state, 'value', state)}" if state else f"{where}: callback fired"
    text = f"Airflow: {what}\n(The configured WhatsApp notification was not sent: {problem}; see the log.)"
    return text[:TEXT_BODY_MAX]


send_whatsapp_notification = WhatsAppNotifier

__all__ = ["WhatsAppNotifier", "fallback_text", "send_whatsapp_notification"]
