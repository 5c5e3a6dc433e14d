"""Errors raised by the provider, keyed on the Graph API error code.

Which Graph code becomes which class is written once, in
:data:`airflow_provider_whatsapp.spec.error_codes.ERROR_CODES`; each class's docstring lists its codes
from that table.

Every error says what happened and what to do. Each class is either retryable (the request provably
did not take effect, so it can be sent again) or permanent: permanent errors derive from Airflow's
``AirflowFailException`` so the task fails without Airflow retries.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_whatsapp._compat import AirflowException, AirflowFailException
from airflow_provider_whatsapp.redact import scrub
from airflow_provider_whatsapp.spec import error_codes
from airflow_provider_whatsapp.spec.limits import MATON_REQUESTS_PER_SECOND


class WhatsAppError(AirflowException):
    """Base of every error from the WhatsApp provider.

    :param message: what happened and what to do about it.
    :param http_status: HTTP status of the response, if there was one.
    :param code: Graph API error code, if the response carried one.
    :param subcode: Graph API error subcode.
    :param details: ``error_data.details`` from the response.
    :param fbtrace_id: Meta's trace id, useful when contacting Meta support.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
    ) -> None:
        # Every error passes here, whatever it quotes (a server's message, details, a body excerpt):
        # scrubbing once at the root keeps the key out of str(), repr(), logs, XCom and the journal.
        message = scrub(message)
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.details = scrub(details) if details is not None else None
        self.fbtrace_id = scrub(fbtrace_id) if isinstance(fbtrace_id, str) else fbtrace_id

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        # Keep the keyword-only fields when the error crosses a process boundary (e.g. a triggerer).
        return (_rebuild, (type(self), self.message, self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "http_status": self.http_status,
            "code": self.code,
            "subcode": self.subcode,
            "details": self.details,
            "fbtrace_id": self.fbtrace_id,
        }


def _rebuild(cls: type[WhatsAppError], message: str, fields: dict[str, Any]) -> WhatsAppError:
    return cls(message, **fields)


# --- retryable: the request did not take effect --------------------------------------------------


class WhatsAppRetryableError(WhatsAppError):
    """The request was refused before it took effect; sending it again is safe."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


class WhatsAppRateLimitError(WhatsAppRetryableError):
    """Throttled by Maton (HTTP 429) or by Meta: the app, the account or the phone number sent too fast."""


class WhatsAppPairRateLimitError(WhatsAppRetryableError):
    """Too many messages to the same recipient in a short time (Meta's pair rate limit).

    ``retry_after`` is only the server's; the wait without one (Meta's pair interval, doubling) is the
    retry policy's (:meth:`~airflow_provider_whatsapp.hooks._retry.RetryPolicy.pair_rate_wait`).
    """


class WhatsAppTransientError(WhatsAppRetryableError):
    """A temporary failure on Meta's or Maton's side (or HTTP 503)."""


class WhatsAppConnectError(WhatsAppRetryableError):
    """The gateway could not be reached; nothing was sent."""


class WhatsAppTimeoutError(WhatsAppTransientError):
    """A read got no complete answer within the hook's ``timeout``.

    The hook does not ask again within the same call (the timeout bounds how long a slow server may
    hold it); Airflow may retry the task. A send that times out raises
    :class:`WhatsAppDeliveryUnknownError` instead.
    """


# --- ambiguous: the request may have taken effect ------------------------------------------------


class WhatsAppDeliveryUnknownError(WhatsAppError, AirflowFailException):
    """A send failed after the request reached the server: the message may have been delivered.

    It is not retried, by the hook or by Airflow, so that a recipient never gets the same message twice.
    """


class WhatsAppNotConfirmedError(WhatsAppError, AirflowFailException):
    """WhatsApp accepted a message, but the task could not confirm what became of it: its status did not
    reach what the task asked to ``confirm`` in time, or the wait after the send broke (a failed trigger,
    the task's execution timeout; an approval's wait for an answer too).

    The message may still arrive; it is not sent again, by the task or by Airflow.
    """


# --- permanent: fail the task, say why -----------------------------------------------------------


class WhatsAppPermanentError(WhatsAppError, AirflowFailException):
    """The request cannot succeed as it is; the task fails without Airflow retries."""


class WhatsAppValidationError(WhatsAppPermanentError, ValueError):
    """Input that WhatsApp would refuse, caught before any request was made."""


class WhatsAppConfigurationError(WhatsAppPermanentError):
    """The connection or the arguments do not say enough to make a request."""


class WhatsAppAuthError(WhatsAppPermanentError):
    """The Maton API key (HTTP 401) or Meta's access token was refused."""


class WhatsAppPermissionError(WhatsAppPermanentError):
    """The app lacks a permission for this call."""


class MatonNoConnectionError(WhatsAppPermanentError):
    """Maton's HTTP 400: no WhatsApp Business connection exists (or the one named does not)."""


class WhatsAppInvalidParameterError(WhatsAppPermanentError):
    """A parameter is missing or has a value WhatsApp refuses."""


class WhatsAppUndeliverableError(WhatsAppPermanentError):
    """The message cannot be delivered to this recipient."""


class WhatsAppRecipientNotAllowedError(WhatsAppPermanentError):
    """The recipient is not in the test number's allowed list."""


class WhatsAppAccountLockedError(WhatsAppPermanentError):
    """The business account is locked or restricted."""


class WhatsAppReEngagementError(WhatsAppPermanentError):
    """The customer-service window has closed since the recipient last wrote; only templates may be sent."""


class WhatsAppUnsupportedMessageError(WhatsAppPermanentError):
    """The message type is not supported."""


class WhatsAppTemplateError(WhatsAppPermanentError):
    """A template send was refused (any template error without a class of its own)."""


class WhatsAppTemplateParameterCountError(WhatsAppTemplateError):
    """The number of parameters does not match the template's placeholders."""


class WhatsAppTemplateNotFoundError(WhatsAppTemplateError):
    """No template of that name and language exists (or it is not approved)."""


class WhatsAppTemplateParameterFormatError(WhatsAppTemplateError):
    """A parameter's format does not match what the template expects."""


class WhatsAppTemplateRejectedError(WhatsAppTemplateError):
    """Meta rejected, paused or disabled the template a sensor was waiting for."""


class WhatsAppPhoneNotRegisteredError(WhatsAppPermanentError):
    """The business phone number is not registered with the Cloud API."""


MAY_HAVE_BEEN_DELIVERED = (
    "The message may have been delivered: the request reached the server but no clear answer came "
    "back. It was not sent again, to avoid a duplicate; check the recipient's chat before re-running."
)


def error_class_for_code(code: int | None) -> tuple[type[WhatsAppError], str] | None:
    """The error class and advice for a Graph error code (from the shared table), or ``None``."""
    row = error_codes.lookup(code)
    if row is None:
        return None
    cls = globals()[row.error_class]
    return cls, row.advice


def _graph_error(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return None


def _details(error: dict[str, Any]) -> str | None:
    data = error.get("error_data")
    if isinstance(data, dict):
        details = data.get("details")
        return str(details) if details else None
    return str(data) if data else None


def error_from_response(
    status_code: int,
    body: Any,
    *,
    retry_after: float | None = None,
    may_have_taken_effect: bool,
    redirect_host: str | None = None,
) -> WhatsAppError:
    """Turn an HTTP error response from Maton or Graph into the matching provider error.

    :param status_code: HTTP status.
    :param body: the decoded JSON body, or the text when it was not JSON.
    :param retry_after: seconds from the ``Retry-After`` header, if any.
    :param may_have_taken_effect: True for a request (a send) that must not be repeated when the
        failure is ambiguous (a 3xx, or a 5xx without a code that proves it was refused).
    :param redirect_host: the host a 3xx pointed to (never the rest of ``Location``, which may carry
        anything).
    """
    graph = _graph_error(body)
    code = _as_int(graph.get("code")) if graph else None
    subcode = _as_int(graph.get("error_subcode")) if graph else None
    graph_message = str(graph.get("message") or "") if graph else ""
    details = _details(graph) if graph else None
    fields: dict[str, Any] = {
        "http_status": status_code,
        "code": code,
        "subcode": subcode,
        "details": details,
        "fbtrace_id": graph.get("fbtrace_id") if graph else None,
    }

    def describe(advice: str) -> str:
        parts = [advice]
        if code is not None:
            head = f"Graph error {code}" + (f"/{subcode}" if subcode else "")
            said = "; ".join(p for p in (graph_message, details) if p)
            parts.append(f"({head}: {said})" if said else f"({head})")
        elif graph_message:
            parts.append(f"(HTTP {status_code}: {graph_message})")
        elif body and not isinstance(body, dict):
            parts.append(f"(HTTP {status_code}: {str(body)[:300]})")
        else:
            parts.append(f"(HTTP {status_code})")
        return " ".join(parts)

    known = error_class_for_code(code)
    if known is not None:
        cls, advice = known
        if issubclass(cls, WhatsAppRetryableError):
            return cls(describe(advice), retry_after=retry_after, **fields)
        return cls(describe(advice), **fields)

    if 300 <= status_code < 400:
        # Redirects are never followed: the bearer key would go along to wherever they point.
        # Its body is not quoted: it repeats the target, which could carry anything.
        where = f" to {redirect_host}" if redirect_host else ""
        if may_have_taken_effect:
            return WhatsAppDeliveryUnknownError(
                f"The gateway answered HTTP {status_code}, a redirect{where}. {MAY_HAVE_BEEN_DELIVERED}",
                **fields,
            )
        return WhatsAppConfigurationError(
            f"The gateway answered HTTP {status_code}, a redirect{where}; redirects are not followed, so "
            "that the key goes nowhere else. Check the connection's host (scheme, port, path).",
            **fields,
        )
    if status_code == 401:
        return WhatsAppAuthError(
            describe(
                "The Maton API key was refused: check the password of the Maton connection "
                "(or MATON_API_KEY)."
            ),
            **fields,
        )
    if status_code == 429:
        return WhatsAppRateLimitError(
            describe(
                f"Maton's rate limit ({MATON_REQUESTS_PER_SECOND} requests/s per account) was exceeded; "
                "slow down."
            ),
            retry_after=retry_after,
            **fields,
        )
    if status_code == 400 and code is None:
        return MatonNoConnectionError(
            describe(
                "Maton found no active WhatsApp Business connection to use (or the Maton-Connection "
                "given does not exist): create one with MatonHook.create_maton_connection() or at "
                "maton.ai, and set connection_id in the connection's extra if you have several."
            ),
            **fields,
        )
    if status_code == 408:
        # A 408 may come from a proxy in front of Graph, which does not prove Graph never saw the send:
        # only reads are repeated on it.
        if may_have_taken_effect:
            return WhatsAppDeliveryUnknownError(
                describe("The server timed out receiving the request. " + MAY_HAVE_BEEN_DELIVERED), **fields
            )
        return WhatsAppTransientError(
            describe("The server timed out receiving the request; it is safe to try again."),
            retry_after=retry_after,
            **fields,
        )
    if status_code == 413:
        return WhatsAppPermanentError(
            describe("The request is larger than the server accepts; make it smaller."), **fields
        )
    if status_code == 503:
        return WhatsAppTransientError(
            describe("The service is temporarily unavailable; it is safe to try again."),
            retry_after=retry_after,
            **fields,
        )
    if status_code >= 500:
        if may_have_taken_effect:
            return WhatsAppDeliveryUnknownError(describe(MAY_HAVE_BEEN_DELIVERED), **fields)
        hint = " If it persists through Maton, the WhatsApp OAuth grant may have expired: reconnect it."
        return WhatsAppTransientError(
            describe("The server failed to answer." + hint), retry_after=retry_after, **fields
        )
    if status_code == 404:
        return WhatsAppInvalidParameterError(
            describe("Not found: check the phone number id, WABA id or object id."), **fields
        )
    if status_code == 403:
        return WhatsAppPermissionError(describe("Access denied."), **fields)
    return WhatsAppPermanentError(describe("The request was refused."), **fields)


def _document_codes() -> None:
    """Append to each class's docstring the Graph codes the table maps to it (one place for the codes)."""
    codes: dict[str, list[str]] = {}
    for each in error_codes.ERROR_CODES.values():
        codes.setdefault(each.error_class, []).append(str(each.code))
    permission = error_codes.lookup(error_codes.PERMISSION_CODES.start)
    spans = (
        (permission, error_codes.PERMISSION_CODES),
        (error_codes.OTHER_TEMPLATE_ERROR, error_codes.TEMPLATE_CODES),
    )
    for row, span in spans:
        if row is not None:
            codes.setdefault(row.error_class, []).append(f"any other of {span.start}-{span.stop - 1}")
    for name, listed in codes.items():
        cls = globals()[name]
        cls.__doc__ = f"{cls.__doc__}\n\n    Graph error codes: {', '.join(listed)}.\n"


_document_codes()


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
