"""WhatsApp notifier for task and DAG callbacks (``on_failure_callback``, ``on_success_callback``, ...)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import (
    BaseNotifier,
    notifier_init_kwargs,
    redact_text,
    render_template_field,
)
from airflow_provider_whatsapp.operators._base import check_ids_if_concrete, is_concrete
from airflow_provider_whatsapp.operators._confirm import (
    DEFAULT_CONFIRM_POKE_INTERVAL,
    DEFAULT_CONFIRM_TIMEOUT,
    check_seconds,
    check_target,
)
from airflow_provider_whatsapp.redact import mask_phone_number, scrub

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    import jinja2
    from airflow.sdk import Context

    from airflow_provider_whatsapp.hooks.maton import MatonHook
    from airflow_provider_whatsapp.messages import OutgoingMessage
    from airflow_provider_whatsapp.webhooks.store import EventStore


class WhatsAppNotifier(BaseNotifier):
    """Send a WhatsApp text or template when a callback fires.

    Fields are rendered with the task context, e.g. ``body="{{ dag.dag_id }}.{{ ti.task_id }} failed:
    {{ exception }}"``. Outside the 24-hour window only a template can be delivered (error 131047), and
    WhatsApp reports that only after accepting the text. Give both ``body`` and ``template_name`` and
    each recipient gets the text when the event store shows they wrote within 24 hours, the template
    otherwise; with ``confirm`` set, a text that fails with 131047 is followed by the template (the
    text was not delivered, so nobody gets both).

    Without ``confirm`` a notification that raised nothing was ACCEPTED by WhatsApp, not delivered.
    With ``confirm``, the notifier waits (in the callback, up to ``confirm_timeout``) until each
    message reached that status, and raises naming every recipient that it did not reach.

    :param to: a recipient's phone number, or a list of them (each gets the message).
    :param body: the text to send (at most 4096 characters); give this, ``template_name`` or both.
    :param template_name: an approved template to send instead of (or when the window is closed, in
        place of) the text.
    :param language_code: the template's language.
    :param body_parameters: the template body's text parameters, in placeholder order.
    :param components: template parameter values as the Graph API takes them.
    :param preview_url: render a preview of the first URL of a text.
    :param confirm: ``None``, ``"sent"``, ``"delivered"`` or ``"read"``: the status each message must
        reach (as WhatsApp's status webhooks report it in the event store) before the notifier returns.
    :param confirm_timeout: seconds (or a ``timedelta``) to wait for ``confirm``; a message that did not
        reach it by then counts as not alerted, and is not sent again.
    :param confirm_poke_interval: seconds between two looks at the event store.
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
        confirm: str | None = None,
        confirm_timeout: float | timedelta = DEFAULT_CONFIRM_TIMEOUT,
        confirm_poke_interval: float = DEFAULT_CONFIRM_POKE_INTERVAL,
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
        self.confirm = check_target("confirm", confirm, optional=True)
        self.confirm_timeout = check_seconds("confirm_timeout", confirm_timeout)
        self.confirm_poke_interval = check_seconds("confirm_poke_interval", confirm_poke_interval)
        # What was configured, kept apart from the fields: a field that fails to render becomes None.
        self.has_text = body is not None
        self.has_template = template_name is not None
        if not (self.has_text or self.has_template):
            from airflow_provider_whatsapp.errors import WhatsAppValidationError

            raise WhatsAppValidationError("WhatsAppNotifier needs body, template_name, or both.")
        if self.has_text and is_concrete(body):
            self.build_text()
        if self.has_template and all(is_concrete(self.__dict__[name]) for name in _TEMPLATE_FIELDS):
            self.build_template()
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

    def build_text(self) -> OutgoingMessage:
        """The validated text message."""
        from airflow_provider_whatsapp.messages import TextMessage

        return TextMessage.build(body=self.body, preview_url=self.preview_url)

    def build_template(self) -> OutgoingMessage:
        """The validated template message."""
        from airflow_provider_whatsapp.messages import TemplateMessage

        return TemplateMessage.build(
            name=self.template_name,
            language_code=self.language_code,
            body_parameters=self.body_parameters,
            components=self.components,
        )

    def build_message(self) -> OutgoingMessage:
        """The message a recipient gets when their 24-hour window is not known to be open: the template
        if there is one, else the text."""
        return self.build_template() if self.has_template else self.build_text()

    def event_store(self) -> EventStore:
        """The connection's event store: who wrote within 24 hours, and each sent message's status."""
        from airflow_provider_whatsapp.webhooks.store import EventStore

        return EventStore.for_connection(self.maton_conn_id)

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

    def _messages_for(self, context: Context) -> _Alert:
        """The configured text and template, each when it rendered and validated; the fallback text
        naming the failure when neither did."""
        from airflow_provider_whatsapp.errors import WhatsAppValidationError
        from airflow_provider_whatsapp.messages import TextMessage

        unrendered = [name for name in getattr(self, "_unrendered", ()) if name in _MESSAGE_FIELDS]
        problems: list[str] = []
        built: dict[str, OutgoingMessage | None] = {"text": None, "template": None}
        parts = (
            ("text", self.has_text, ("body",), self.build_text),
            ("template", self.has_template, _TEMPLATE_FIELDS, self.build_template),
        )
        for kind, configured, fields, build in parts:
            if not configured:
                continue
            broken = [name for name in unrendered if name in fields]
            if broken:
                problems.append(f"its {', '.join(broken)} failed to render")
                continue
            try:
                built[kind] = build()
            except WhatsAppValidationError as error:
                self.log.error("WhatsAppNotifier: %s", error)
                problems.append("its message was invalid after rendering")
        if built["text"] is None and built["template"] is None:
            self.log.error("WhatsAppNotifier: %s; sending a fallback message", "; ".join(problems))
            return _Alert(TextMessage.build(body=fallback_text(context, "; ".join(problems))), None)
        if problems:
            self.log.error("WhatsAppNotifier: %s; sending the other message", "; ".join(problems))
        return _Alert(built["text"], built["template"])

    def _open_store(self, alert: _Alert) -> EventStore | None:
        """The event store, when this alert needs it (a choice between text and template, or a
        confirmation); ``None`` when it does not, or cannot be opened (then the alert still goes out)."""
        if self.confirm is None and not alert.needs_choice:
            return None
        try:
            return self.event_store()
        except Exception as error:
            self.log.error("WhatsAppNotifier: the event store cannot be opened (%s)", error)
            return None

    def _first_message(self, alert: _Alert, store: EventStore | None, recipient: str) -> OutgoingMessage:
        """The text when the recipient's window is known to be open (or there is no template), else the
        template. The store is read here; call from a thread in async code."""
        if alert.text is None:
            return alert.fallback
        if alert.template is not None and not _window_open(store, recipient, self.log):
            return alert.template
        return alert.text

    def _recipients(self) -> list[str]:
        if "to" in getattr(self, "_unrendered", ()):
            from airflow_provider_whatsapp.errors import WhatsAppValidationError

            raise WhatsAppValidationError("to: failed to render (see the error above); nobody to alert")
        return self.recipients()

    def notify(self, context: Context) -> None:
        """Send the message to every recipient (called by Airflow with the rendered fields), then wait
        for ``confirm`` if set.

        Each recipient is tried even when an earlier one failed; the failures are raised together after.
        """
        recipients = self._recipients()
        failures: list[tuple[str, Exception]] = []
        with self.hook() as hook:
            # Reading the connection registers its key, so the fallback text below can hide it.
            _ = hook.settings
            alert = self._messages_for(context)
            store = self._open_store(alert)
            waiting = self._confirmation(store, alert, failures)
            for recipient in recipients:
                message = self._first_message(alert, store, recipient)
                self._send(hook, recipient, message, alert, failures, waiting)
            if waiting is not None:
                from airflow_provider_whatsapp.triggers._events import end_time_after

                end_time = end_time_after(self.confirm_timeout)
                while waiting.pending:
                    for recipient in waiting.check():
                        # The text failed with 131047, so it was not delivered: the template is safe.
                        self._send(hook, recipient, alert.fallback, alert, failures, waiting)
                    if waiting.pending and not _pause(end_time, self.confirm_poke_interval):
                        waiting.expire()
        _raise_failures(failures, len(recipients))

    async def async_notify(self, context: Context) -> None:
        """:meth:`notify` without blocking an event loop (Airflow 3's triggerer, deadline alerts)."""
        recipients = self._recipients()
        failures: list[tuple[str, Exception]] = []
        hook = self.hook()
        try:
            await hook.aget_settings()
            alert = self._messages_for(context)
            store = await asyncio.to_thread(self._open_store, alert)
            waiting = self._confirmation(store, alert, failures)
            for recipient in recipients:
                message = await asyncio.to_thread(self._first_message, alert, store, recipient)
                await self._asend(hook, recipient, message, alert, failures, waiting)
            if waiting is not None:
                from airflow_provider_whatsapp.triggers._events import end_time_after

                end_time = end_time_after(self.confirm_timeout)
                while waiting.pending:
                    for recipient in await asyncio.to_thread(waiting.check):
                        await self._asend(hook, recipient, alert.fallback, alert, failures, waiting)
                    if waiting.pending and not await _apause(end_time, self.confirm_poke_interval):
                        await asyncio.to_thread(waiting.expire)
        finally:
            await hook.aclose()
        _raise_failures(failures, len(recipients))

    def _confirmation(
        self, store: EventStore | None, alert: _Alert, failures: list[tuple[str, Exception]]
    ) -> _Confirmation | None:
        if self.confirm is None:
            return None
        return _Confirmation(
            self.confirm, store, failures, can_fall_back=alert.template is not None, log=self.log
        )

    def _send(
        self,
        hook: MatonHook,
        recipient: str,
        message: OutgoingMessage,
        alert: _Alert,
        failures: list[tuple[str, Exception]],
        waiting: _Confirmation | None,
    ) -> None:
        """Send ``message`` to ``recipient``; record the failure, or the wamid to confirm."""
        try:
            wamid = hook.message_id(hook.send_message(message.to_payload(recipient)))
        except Exception as error:
            failures.append((recipient, self._log_failure(recipient, error)))
        else:
            self._track(recipient, wamid, message, alert, waiting)

    async def _asend(
        self,
        hook: MatonHook,
        recipient: str,
        message: OutgoingMessage,
        alert: _Alert,
        failures: list[tuple[str, Exception]],
        waiting: _Confirmation | None,
    ) -> None:
        try:
            wamid = hook.message_id(await hook.asend_message(message.to_payload(recipient)))
        except Exception as error:
            failures.append((recipient, self._log_failure(recipient, error)))
        else:
            self._track(recipient, wamid, message, alert, waiting)

    def _track(
        self,
        recipient: str,
        wamid: str,
        message: OutgoingMessage,
        alert: _Alert,
        waiting: _Confirmation | None,
    ) -> None:
        self._log_sent(recipient, wamid)
        if waiting is not None:
            waiting.add(recipient, wamid, free_form=message is not alert.template)

    def _log_sent(self, recipient: str, wamid: str | None) -> None:
        self.log.info("WhatsApp notification sent to %s: %s", mask_phone_number(recipient), wamid)

    def _log_failure(self, recipient: str, error: Exception) -> Exception:
        self.log.error(
            "WhatsApp notification to %s failed: %s",
            mask_phone_number(recipient),
            _describe(recipient, error),
        )
        return error


@dataclass(frozen=True)
class _Alert:
    """What the notifier can send: the text, the template, or both (then chosen per recipient)."""

    text: OutgoingMessage | None
    template: OutgoingMessage | None

    @property
    def needs_choice(self) -> bool:
        return self.text is not None and self.template is not None

    @property
    def fallback(self) -> OutgoingMessage:
        """The template that follows a text refused for the closed window."""
        assert self.template is not None
        return self.template


@dataclass
class _Sent:
    recipient: str
    free_form: bool


class _Confirmation:
    """The sent alerts still waiting for their status, and what each outcome means.

    :param target: the status to reach (``sent``, ``delivered``, ``read``).
    :param store: the event store; ``None`` when it could not be opened (nothing can be confirmed).
    :param failures: where a recipient not reached is recorded, with its error.
    :param can_fall_back: whether a template may follow a text that failed with 131047.
    """

    def __init__(
        self,
        target: str,
        store: EventStore | None,
        failures: list[tuple[str, Exception]],
        *,
        can_fall_back: bool,
        log: Any,
    ) -> None:
        self.target = target
        self.store = store
        self.failures = failures
        self.can_fall_back = can_fall_back
        self.log = log
        #: wamid -> whom it went to (a number listed twice gets two messages, each confirmed).
        self.pending: dict[str, _Sent] = {}

    def add(self, recipient: str, wamid: str, *, free_form: bool) -> None:
        self.pending[wamid] = _Sent(recipient, free_form)

    def check(self) -> list[str]:
        """One look at each pending alert (blocking); returns the recipients to send the template to."""
        from airflow_provider_whatsapp.spec.error_codes import RE_ENGAGEMENT
        from airflow_provider_whatsapp.triggers._events import tolerant
        from airflow_provider_whatsapp.triggers.status import REACHED, failure_error, look

        store = self.store
        if store is None:
            self.expire()
            return []
        fall_back = []
        for wamid, sent in list(self.pending.items()):
            outcome = tolerant(lambda: look(store, wamid, self.target), self.log)()  # noqa: B023
            if outcome is None:
                continue
            del self.pending[wamid]
            if outcome["status"] == REACHED:
                self.log.info("WhatsApp notification %s is %s", wamid, outcome["event"].get("status"))
                continue
            error = failure_error(outcome)
            if sent.free_form and self.can_fall_back and error.code == RE_ENGAGEMENT:
                self.log.warning(
                    "WhatsApp notification %s to %s failed outside the 24-hour window; sending the template",
                    wamid,
                    mask_phone_number(sent.recipient),
                )
                fall_back.append(sent.recipient)
            else:
                self.failures.append((sent.recipient, error))
        return fall_back

    def expire(self) -> None:
        """Record every alert still pending as not confirmed (it is not sent again)."""
        from airflow_provider_whatsapp.errors import WhatsAppNotConfirmedError
        from airflow_provider_whatsapp.triggers.status import not_confirmed_text

        for wamid, sent in self.pending.items():
            if self.store is None:
                text = (
                    f"WhatsApp accepted message {wamid}, but the event store could not be opened to "
                    f"confirm it {self.target} (see the log). It was not sent again."
                )
            else:
                text = not_confirmed_text(wamid, self.target, _status(self.store, wamid, self.log))
            self.failures.append((sent.recipient, WhatsAppNotConfirmedError(text)))
        self.pending.clear()


def _status(store: EventStore, wamid: str, log: Any) -> str | None:
    try:
        event = store.status(wamid)
    except OSError as error:
        log.warning("Could not read the WhatsApp event store: %s", error)
        return None
    return event.status if event is not None else None


def _window_open(store: EventStore | None, recipient: str, log: Any) -> bool:
    """Whether the store shows that ``recipient`` wrote within 24 hours; unknown counts as closed."""
    if store is None:
        return False
    try:
        return store.window_open(recipient)
    except OSError as error:
        log.warning("Could not read the WhatsApp event store: %s", error)
        return False


def _pause(end_time: float | None, interval: float) -> bool:
    """Sleep until the next look; ``False`` (without sleeping) once ``end_time`` has passed."""
    from airflow_provider_whatsapp.triggers._events import remaining

    left = remaining(end_time)
    if left == 0:
        return False
    time.sleep(interval if left is None else min(interval, left))
    return True


async def _apause(end_time: float | None, interval: float) -> bool:
    from airflow_provider_whatsapp.triggers._events import remaining

    left = remaining(end_time)
    if left == 0:
        return False
    await asyncio.sleep(interval if left is None else min(interval, left))
    return True


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
#: Those that make up the template.
_TEMPLATE_FIELDS = ("template_name", "language_code", "body_parameters", "components")
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
