"""Send one message, or one template with per-recipient parameters, to many WhatsApp recipients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import AirflowException, AirflowFailException
from airflow_provider_whatsapp.operators._base import WhatsAppBaseOperator
from airflow_provider_whatsapp.operators._confirm import (
    DEFAULT_CONFIRM_POKE_INTERVAL,
    DEFAULT_CONFIRM_TIMEOUT,
    check_seconds,
    check_target,
)
from airflow_provider_whatsapp.redact import mask_phone_number
from airflow_provider_whatsapp.spec.limits import MAX_BULK_PROCESSES, MAX_FAILURES_IN_XCOM

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence
    from datetime import timedelta

    from airflow_provider_whatsapp.bulk.engine import BulkConfig, BulkItem, BulkResult
    from airflow_provider_whatsapp.bulk.progress import Journal, Outcome
    from airflow_provider_whatsapp.errors import WhatsAppError
    from airflow_provider_whatsapp.hooks.maton import MatonHook
    from airflow_provider_whatsapp.operators._confirm import Confirmation
    from airflow_provider_whatsapp.webhooks.store import EventStore

# Upper bounds on arguments that are plain numbers (checked at DAG parse, no import needed).
MAX_JOURNAL_WAIT_SECONDS = 3600
MAX_FAILURES_IN_XCOM_LIMIT = 10_000
# The bulk hooks' own settings: one attempt per call and no limiter of their own, since the engine
# paces and decides every retry.
BULK_HOOK_ARGUMENTS: dict[str, Any] = {"max_attempts": 1, "rate_limit": 0}


class WhatsAppSendBulkOperator(WhatsAppBaseOperator):
    """Send to many recipients at the rate limit; resumable after a crash without duplicates.

    Give either ``message`` (the same message for everyone: a payload dict such as
    ``{"type": "text", "text": {"body": "..."}}`` or a message model) or ``template_name`` with
    parameters, shared (``body_parameters``, ``components``, ``header``) and per recipient
    (``recipients=[{"to": "+14155550100", "body_parameters": ["Ada"]}, ...]``). Everything is
    validated before the first send. A file in the message (``file_path``) is uploaded once.

    Sends run concurrently, never above ``max_rate`` per second. A throttled send (HTTP 429, codes 4,
    80007, 130429) slows everything down and is retried; a pair-rate error (131056) holds back only
    that recipient. A send that may have reached WhatsApp (a 5xx, a broken connection, a worker killed
    mid-request) is reported as *unknown* and never sent again unless you ask with ``resend_unknown``.

    Progress is a journal of every send (recipient, state, wamid, payload fingerprint) under
    ``progress_path``, keyed by ``dag_id/run_id/task_id[@map_index]`` (each part escaped); a new try of
    the task reads it and skips every recipient already accepted. The default,
    ``$AIRFLOW_HOME/whatsapp_bulk_progress``, is on the worker's own disk: with several workers use
    storage they all see (``s3://bucket/prefix``, ``gs://...``, or a shared mount as
    ``file:///shared/...``). One run at a time holds a journal: a second run of the same task instance
    (a zombie's retry, a manual re-run) waits ``journal_wait`` seconds, then fails without sending. A
    try whose message differs from what an earlier try sent a recipient fails before sending, unless
    ``resend_changed=True``.

    Returns (XCom) ``{"total", "sent", "skipped", "failed", "unknown", "not_sent", "failures":
    [{"to", "code", "reason", "retryable"}], "failures_omitted", "unknown_recipients": [{"to", "code",
    "reason"}], "unknown_omitted", "throttled", "elapsed_seconds", "rate_per_second",
    "progress_path"}``; ``skipped`` counts recipients accepted by an earlier try. The two lists hold
    at most ``max_failures_in_xcom`` entries each; the journal at ``progress_path`` has them all.

    Without ``confirm``, a green task proves that WhatsApp ACCEPTED the messages, not that they arrived:
    a free-form message outside a recipient's 24-hour window (131047), or to a number that cannot get it
    (131026), is accepted and fails later, by a status webhook. With ``confirm`` (``"sent"``,
    ``"delivered"`` or ``"read"``), once the send above is done (its journal, checks and counts as
    without), the task waits until every message WhatsApp accepted for this task, in this try or in an
    earlier one (their wamids are in the journal), reached that status or failed, reading the event
    store the webhook receiver writes: each ``confirm_poke_interval`` it reads the status of each
    undecided message once, up to ``confirm_timeout``. It waits in the worker, not in the triggerer:
    the bulk task already holds a worker while it sends, and it has released its journal by then.
    Nothing is ever sent again, by this wait, by a new try or by Airflow's retries. The result gains
    ``"confirmed"``, ``"failed_after_send"``, ``"failed_after_send_recipients": [{"to", "code", "title",
    "wamid"}]`` (at most ``max_failures_in_xcom``, ``"failed_after_send_omitted"`` more) and
    ``"unconfirmed"`` (no final status by the timeout). Recipients that failed after the send and those
    unconfirmed count toward ``max_failure_ratio`` together with the failed and unknown sends; over it,
    the task fails without Airflow retries (the messages were sent), naming the counts and the most
    common error code: with :class:`~airflow_provider_whatsapp.errors.WhatsAppNotConfirmedError` when
    some are unconfirmed, else with the error class of that code (131047:
    :class:`~airflow_provider_whatsapp.errors.WhatsAppReEngagementError`, send a template instead).

    :param recipients: phone numbers, or dicts with ``to`` and per-recipient template fields
        (``body_parameters``, ``components``, ``header``); also a JSON/Python list as a string, or
        numbers separated by commas or new lines (templated, so it can come from XCom). Or a file,
        read as a stream and never held whole (for sends too big for XCom): an ``ObjectStoragePath``,
        or a path or URL as text, i.e. any text holding ``://`` (``s3://conn_id@bucket/key.jsonl``,
        ``file:///data/r.csv``) or ending in ``.jsonl``/``.ndjson`` (one number or one
        ``{"to": ..., "body_parameters": [...]}`` object per line) or ``.csv`` (a header row with a
        ``to`` column; ``body_parameters``, ``components`` and ``header`` columns hold JSON, e.g.
        ``["Ada"]``). Errors name the line (or CSV row). The file is read again while sending: do not
        change it until the task is done.
    :param message: the message for every recipient (exclusive with ``template_name``).
    :param template_name: an approved template; ``language_code``, ``components``,
        ``body_parameters`` and ``header`` are its shared values, overridden per recipient.
    :param max_rate: most sends per second: default the connection's ``rate_limit`` extra, else
        :func:`~airflow_provider_whatsapp.spec.limits.default_rate` (Maton's per-account limit through
        Maton, Meta's per-number default for Graph direct).
    :param max_concurrency: most requests in flight (default: enough for 2 s of latency at max_rate).
    :param max_failure_ratio: the task fails when failed plus unknown recipients exceed this fraction
        of all recipients (default 0: any failure or doubt fails the task, after every other
        recipient was tried).
    :param resend_unknown: ``True`` to send again to every recipient a previous try left unknown (may
        duplicate), or a list of the recipients to send again (after checking they did not get it).
    :param retry_failed: on a new try, send again to recipients that failed before (safe: a failed
        send was not delivered); ``False`` keeps them failed.
    :param progress_path: where the journal lives (templated): a local or shared path, or any
        ``ObjectStoragePath`` URL (``s3://conn_id@bucket/prefix``).
    :param resend_changed: ``True`` to send the new message to recipients an earlier try sent (or may
        have sent) a different one; by default such a try fails before sending anything.
    :param journal_wait: seconds to wait for another run of this task instance that holds the journal
        (default 0: fail at once, retryable, naming that run's host, pid and try).
    :param max_failures_in_xcom: most failed (and most unknown) recipients listed in the XCom result.
    :param confirm: ``None`` (default): succeed once the messages were accepted; ``"sent"``,
        ``"delivered"`` or ``"read"``: also wait until each reached that status (see above).
    :param confirm_timeout: seconds (or a ``timedelta``) the whole confirmation waits at most.
    :param confirm_poke_interval: seconds between two looks at the event store.
    :param processes: worker processes that send (default 1: this task's process), for rates one core
        cannot keep up with (several hundred a second). Each sends its share of the recipients at
        ``max_rate / processes`` with ``max_concurrency / processes`` in flight and writes its own
        journal shard beside the journal; this task's process keeps the journal's lease. At most
        :data:`~airflow_provider_whatsapp.spec.limits.MAX_BULK_PROCESSES` (32), and no more than
        ``max_concurrency``. Needs ``progress_path`` on a local or shared POSIX path (an object-store
        journal is refused before anything is sent: use mapped tasks, each with its share of
        ``max_rate``, instead).
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "recipients",
        "message",
        "template_name",
        "language_code",
        "components",
        "body_parameters",
        "header",
        "progress_path",
    )
    template_fields_renderers = {"message": "json", "components": "json", "recipients": "json"}

    def __init__(
        self,
        *,
        recipients: Any,
        message: Any = None,
        template_name: str | None = None,
        language_code: str = "en_US",
        components: list[Any] | None = None,
        body_parameters: list[Any] | None = None,
        header: Any = None,
        max_rate: float | None = None,
        max_concurrency: int | None = None,
        max_failure_ratio: float = 0.0,
        resend_unknown: bool | Collection[str] = False,
        retry_failed: bool = True,
        progress_path: str | None = None,
        resend_changed: bool = False,
        journal_wait: float = 0.0,
        max_failures_in_xcom: int = MAX_FAILURES_IN_XCOM,
        confirm: str | None = None,
        confirm_timeout: float | timedelta = DEFAULT_CONFIRM_TIMEOUT,
        confirm_poke_interval: float = DEFAULT_CONFIRM_POKE_INTERVAL,
        processes: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.confirm = check_target("confirm", confirm, optional=True)
        self.confirm_timeout = check_seconds("confirm_timeout", confirm_timeout)
        self.confirm_poke_interval = check_seconds("confirm_poke_interval", confirm_poke_interval)
        if message is not None and template_name is not None:
            raise ValueError("Give either message or template_name to WhatsAppSendBulkOperator, not both.")
        if message is None and template_name is None:
            raise ValueError("WhatsAppSendBulkOperator needs message or template_name.")
        if max_rate is not None and max_rate <= 0:
            raise ValueError(f"max_rate must be positive, got {max_rate!r}.")
        if not 0.0 <= max_failure_ratio <= 1.0:
            raise ValueError(f"max_failure_ratio must be between 0 and 1, got {max_failure_ratio!r}.")
        if not isinstance(resend_changed, bool):
            raise ValueError(f"resend_changed must be True or False, got {resend_changed!r}.")
        if not isinstance(journal_wait, (int, float)) or isinstance(journal_wait, bool):
            raise ValueError(f"journal_wait must be a number of seconds, got {journal_wait!r}.")
        if not 0 <= journal_wait <= MAX_JOURNAL_WAIT_SECONDS:
            raise ValueError(f"journal_wait must be 0 to {MAX_JOURNAL_WAIT_SECONDS} s, got {journal_wait}.")
        if isinstance(max_failures_in_xcom, bool) or not isinstance(max_failures_in_xcom, int):
            raise ValueError(f"max_failures_in_xcom must be a whole number, got {max_failures_in_xcom!r}.")
        if not 0 <= max_failures_in_xcom <= MAX_FAILURES_IN_XCOM_LIMIT:
            raise ValueError(
                f"max_failures_in_xcom must be between 0 and {MAX_FAILURES_IN_XCOM_LIMIT}, got "
                f"{max_failures_in_xcom!r}: the journal keeps the full list, XCom should stay small."
            )
        if isinstance(processes, bool) or not isinstance(processes, int):
            raise ValueError(f"processes must be a whole number, got {processes!r}.")
        if not 1 <= processes <= MAX_BULK_PROCESSES:
            raise ValueError(f"processes must be between 1 and {MAX_BULK_PROCESSES}, got {processes}.")
        self.processes = processes
        self.recipients = recipients
        self.message = message
        self.template_name = template_name
        self.language_code = language_code
        self.components = components
        self.body_parameters = body_parameters
        self.header = header
        self.max_rate = max_rate
        self.max_concurrency = max_concurrency
        self.max_failure_ratio = max_failure_ratio
        self.resend_unknown = resend_unknown
        self.retry_failed = retry_failed
        self.progress_path = progress_path
        self.resend_changed = resend_changed
        self.journal_wait = journal_wait
        self.max_failures_in_xcom = max_failures_in_xcom

    def _bulk_hook(self) -> MatonHook:
        from airflow_provider_whatsapp.hooks.maton import MatonHook

        return MatonHook(
            self.maton_conn_id,
            connection_id=self.connection_id or None,
            phone_number_id=self.phone_number_id or None,
            **BULK_HOOK_ARGUMENTS,
        )

    def execute(self, context: Any) -> dict[str, Any]:
        import asyncio

        from airflow_provider_whatsapp.bulk.engine import (
            BulkConfig,
            changed_recipients,
            refuse_changed,
            run_bulk,
        )
        from airflow_provider_whatsapp.bulk.items import build_plan, upload_once
        from airflow_provider_whatsapp.bulk.lease import Holder
        from airflow_provider_whatsapp.bulk.progress import claim, open_journal
        from airflow_provider_whatsapp.hooks.maton import MatonHook
        from airflow_provider_whatsapp.messages import normalize_recipient
        from airflow_provider_whatsapp.spec.limits import default_rate

        plan = build_plan(
            self.recipients,
            message=self.message,
            template_name=self.template_name,
            language_code=self.language_code,
            components=self.components,
            body_parameters=self.body_parameters,
            header=self.header,
        )
        resend: bool | frozenset[str] = (
            self.resend_unknown
            if isinstance(self.resend_unknown, bool)
            else frozenset(normalize_recipient(r) for r in parse_list(self.resend_unknown))
        )
        hook = self._bulk_hook()
        settings = hook.settings  # connection problems surface here, before any record or send
        # So is a broken event store, which would otherwise fail the task only after everything was sent.
        store = self._event_store() if self.confirm is not None else None
        settings.require_phone_number_id()
        # The bulk hook's rate_limit is 0 (its limiter off): the connection's own rate, as a plain hook
        # reads it, is the pace the engine keeps. 0 there ("no limit") falls back to the default.
        max_rate = self.max_rate or self.hook.settings.rate_limit
        if not max_rate or max_rate <= 0:
            max_rate = default_rate(settings.via_maton)
        concurrency = self.max_concurrency or max(4, int(max_rate * 2))
        config = BulkConfig(
            max_rate=float(max_rate),
            max_concurrency=concurrency,
            resend_unknown=resend,
            retry_failed=self.retry_failed,
            resend_changed=self.resend_changed,
            # Checked below, before the upload: the engine need not build every item again to look.
            changes_checked=not self.resend_changed,
            keep_accepted=self.confirm is not None,
        )

        ti = context["ti"]
        journal = open_journal(
            self.progress_path,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=getattr(ti, "map_index", None),
        )
        try:
            if self.processes > 1:
                from airflow_provider_whatsapp.bulk.workers import refuse_unsupported

                refuse_unsupported(journal, config, self.processes)  # before the journal is claimed
            # This run's own from here: another run of the task instance cannot send alongside it.
            prior = claim(journal, Holder.this_process(try_number=_try_number(ti)), wait=self.journal_wait)
            if not self.resend_changed:
                # Before the upload too: a changed message sends nothing at all.
                refuse_changed(changed_recipients(plan.fingerprints(), prior), journal.location)
            plan = upload_once(plan, lambda kind, source: self.hook.upload_media(source, media_type=kind))
            items = plan.items()
            self.log.info(
                "Bulk send to %d recipient(s) at up to %g/s (%d in flight); progress in %s.",
                len(items),
                max_rate,
                concurrency,
                journal.location,
            )

            async def send(payload: dict[str, Any]) -> str:
                return MatonHook.message_id(await hook.asend_message(payload))

            async def run() -> BulkResult:
                try:
                    # Create the client (TLS context, transport) before the pacer's clock starts, so the first
                    # request does not leave a fraction of a second after its slot and bunch up the next ones.
                    hook.get_async_conn()
                    return await run_bulk(items, send, journal, config, prior=prior, total=len(items))
                finally:
                    await hook.aclose()

            if self.processes > 1:
                result = self._send_in_processes(items, journal, config, prior=prior, hook=hook)
            else:
                result = asyncio.run(run())
        finally:
            journal.close()
            hook.close()
        summary = self._finish(result)
        if store is None:
            return summary
        return self._confirm_accepted(store, result, summary)

    def _send_in_processes(
        self,
        items: Iterable[BulkItem],
        journal: Journal,
        config: BulkConfig,
        *,
        prior: Mapping[str, Outcome],
        hook: MatonHook,
    ) -> BulkResult:
        """The send in :attr:`processes` worker processes, with the connection as ``hook`` resolved it
        (a worker process cannot read connections on Airflow 3) and this process keeping the lease."""
        from airflow_provider_whatsapp.bulk.workers import run_in_processes

        return run_in_processes(
            items,
            journal,
            config,
            prior=prior,
            settings=hook.settings,
            processes=self.processes,
            hook_kwargs={**BULK_HOOK_ARGUMENTS, "timeout": hook.timeout},
        )

    def _event_store(self) -> EventStore:
        """The event store of the connection, where the receiver writes WhatsApp's status webhooks."""
        from airflow_provider_whatsapp.webhooks.store import EventStore

        return EventStore.for_connection(self.maton_conn_id)

    def _finish(self, result: BulkResult) -> dict[str, Any]:
        summary = result.as_dict(max_failures=self.max_failures_in_xcom)
        self.log.info(
            "Bulk send done: %d sent, %d skipped (accepted before), %d failed, %d unknown, %d not sent, "
            "%d throttled answer(s); %.1f messages/s.",
            summary["sent"],
            summary["skipped"],
            summary["failed"],
            summary["unknown"],
            summary["not_sent"],
            summary["throttled"],
            summary["rate_per_second"],
        )
        for entry in result.failed[:20]:
            self.log.warning(
                "Failed: %s (code %s): %s", mask_phone_number(entry["to"]), entry["code"], entry["reason"]
            )
        for entry in result.unknown[:20]:
            self.log.warning(
                "Unknown, may have been delivered: %s: %s", mask_phone_number(entry["to"]), entry["reason"]
            )
        if result.aborted is not None:
            error = result.aborted
            cls = AirflowException if getattr(error, "retryable", False) else AirflowFailException
            raise cls(
                f"Bulk send stopped: {error}. {summary['sent']} sent, {summary['skipped']} skipped, "
                f"{summary['failed']} failed, {summary['unknown']} unknown, {summary['not_sent']} not sent "
                f"yet (a new try sends them). Progress: {summary['progress_path']}"
            )
        if result.problem_ratio > self.max_failure_ratio:
            retryable = any(entry.get("retryable") for entry in result.failed)
            cls = AirflowException if retryable else AirflowFailException
            unknown_hint = (
                " Unknown recipients may have received the message: check their chats, then list those "
                "who did not in resend_unknown (or raise max_failure_ratio to accept)."
                if result.unknown
                else ""
            )
            raise cls(
                f"{summary['failed']} failed and {summary['unknown']} unknown of {summary['total']} "
                f"recipients ({result.problem_ratio:.1%}) is more than max_failure_ratio="
                f"{self.max_failure_ratio:.1%}.{unknown_hint} Progress: {summary['progress_path']}"
            )
        return summary

    def _confirm_accepted(
        self, store: EventStore, result: BulkResult, summary: dict[str, Any]
    ) -> dict[str, Any]:
        """Wait until every accepted message reached :attr:`confirm` or failed; ``summary`` with the
        counts, or a fail-type error when too many did not make it. Nothing is sent here."""
        from airflow_provider_whatsapp.operators._confirm import confirm_all
        from airflow_provider_whatsapp.triggers._events import end_time_after

        target = str(self.confirm)
        messages = {wamid: to for to, wamid in result.accepted.items() if wamid}
        self.log.info(
            "Waiting up to %g s for %d accepted message(s) to be %s.",
            self.confirm_timeout,
            len(messages),
            target,
        )
        confirmation = confirm_all(
            store,
            messages,
            target,
            poke_interval=self.confirm_poke_interval,
            end_time=end_time_after(self.confirm_timeout),
            log=self.log,
        )
        # A journal that lost a message's id (damaged by hand) leaves nothing to wait on: unconfirmed.
        confirmation.unconfirmed += [
            {"to": to, "wamid": None, "seen": None} for to, wamid in result.accepted.items() if not wamid
        ]
        failed = confirmation.failed
        cap = self.max_failures_in_xcom
        summary = {
            **summary,
            "confirmed": confirmation.confirmed,
            "failed_after_send": len(failed),
            "failed_after_send_recipients": [
                {"to": entry["to"], "code": entry["code"], "title": entry["title"], "wamid": entry["wamid"]}
                for entry in failed[:cap]
            ],
            "failed_after_send_omitted": max(0, len(failed) - cap),
            "unconfirmed": len(confirmation.unconfirmed),
        }
        self.log.info(
            "Confirmation done: %d %s, %d failed after the send, %d unconfirmed.",
            confirmation.confirmed,
            target,
            len(failed),
            len(confirmation.unconfirmed),
        )
        for entry in failed[:20]:
            self.log.warning(
                "Failed after the send: %s (code %s): %s",
                mask_phone_number(entry["to"]),
                entry["code"],
                entry["title"],
            )
        for entry in confirmation.unconfirmed[:20]:
            self.log.warning(
                "Not confirmed %s: %s (last status: %s)",
                target,
                mask_phone_number(entry["to"]),
                entry["seen"] or "none seen",
            )
        problems = summary["failed"] + summary["unknown"] + len(failed) + len(confirmation.unconfirmed)
        ratio = problems / summary["total"] if summary["total"] else 0.0
        if ratio > self.max_failure_ratio:
            raise self._not_confirmed(target, summary, confirmation, ratio)
        return summary

    def _not_confirmed(
        self, target: str, summary: dict[str, Any], confirmation: Confirmation, ratio: float
    ) -> WhatsAppError:
        """The fail-type error for too many recipients not confirmed ``target``: never retried by
        Airflow, since every accepted message was sent."""
        from collections import Counter

        from airflow_provider_whatsapp.errors import WhatsAppNotConfirmedError
        from airflow_provider_whatsapp.triggers.status import failure_class

        codes = Counter(entry["code"] for entry in confirmation.failed)
        common_code: int | None = None
        common = ""
        cls: type[WhatsAppError] = WhatsAppNotConfirmedError
        if codes:
            common_code, count = codes.most_common(1)[0]
            title = next(e["title"] for e in confirmation.failed if e["code"] == common_code)
            failure_cls, advice = failure_class(common_code)
            common = (
                f" Most common failure: code {common_code} ({title or 'no title'}), {count} time(s): {advice}"
            )
            if not confirmation.unconfirmed:
                cls = failure_cls
        unconfirmed = len(confirmation.unconfirmed)
        waited = (
            f" {unconfirmed} had no final status after {self.confirm_timeout:g} s: they may still arrive."
            if unconfirmed
            else ""
        )
        message = (
            f"Of {summary['total']} recipients, {summary['failed']} failed and {summary['unknown']} were "
            f"unknown at the send, {summary['failed_after_send']} failed after WhatsApp accepted them and "
            f"{unconfirmed} were not confirmed {target} ({ratio:.1%}): more than max_failure_ratio="
            f"{self.max_failure_ratio:.1%}.{common}{waited} No accepted message was sent again, and a new "
            f"try will not send them again. Progress: {summary['progress_path']}"
        )
        return cls(message, code=common_code)


def _try_number(ti: Any) -> int | None:
    number = getattr(ti, "try_number", None)
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def parse_list(value: Any) -> list[Any]:
    """A templated list argument (``resend_unknown``) as a list."""
    from airflow_provider_whatsapp.bulk.items import parse_recipients

    return parse_recipients(value)
