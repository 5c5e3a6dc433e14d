"""Graph's error codes, once: the provider error each becomes, whether it is retryable, the HTTP
status Graph answers it with, Graph's own title, and what a user should do.

:mod:`airflow_provider_whatsapp.errors` raises from this table; the sandbox answers from it. The
error class is named, not imported, so this layer stays free of Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from airflow_provider_whatsapp.spec.limits import GRAPH_MESSAGES_PER_SECOND, PAIR_RATE_INTERVAL_SECONDS

Kind = Literal["retryable", "permanent"]


# The codes the provider or its sandbox names in code (the table below has every code it knows).
INVALID_PARAMETER = 100
MISSING_ACCESS_TOKEN = 104
INVALID_ACCESS_TOKEN = 190
MISSING_PARAMETER = 131008
INVALID_PARAMETER_VALUE = 131009
UNDELIVERABLE = 131026
RE_ENGAGEMENT = 131047
MEDIA_UPLOAD_ERROR = 131053
PAIR_RATE_LIMIT = 131056
TEMPLATE_PARAMETER_COUNT = 132000
TEMPLATE_NOT_FOUND = 132001
TEMPLATE_TEXT_TOO_LONG = 132005
TEMPLATE_PARAMETER_FORMAT = 132012
TEMPLATE_PAUSED = 132015
# Graph's answer to a webhook subscription whose callback did not echo the verification challenge
CALLBACK_VERIFICATION_FAILED = 2200


@dataclass(frozen=True)
class ErrorCode:
    """One Graph error code.

    :param code: Graph's ``error.code``.
    :param error_class: the name of the class in :mod:`airflow_provider_whatsapp.errors`.
    :param kind: ``retryable`` (the request provably did not take effect) or ``permanent``.
    :param http_status: the HTTP status Graph sends with it.
    :param title: Graph's ``error.message`` (without the ``(#code)`` prefix).
    :param advice: what happened and what to do, as the provider's error says it.
    """

    code: int
    error_class: str
    kind: Kind
    http_status: int
    title: str
    advice: str


def _table(*rows: ErrorCode) -> dict[int, ErrorCode]:
    return {row.code: row for row in rows}


_RETRY: Final = "retryable"
_FAIL: Final = "permanent"

ERROR_CODES: dict[int, ErrorCode] = _table(
    # --- retryable: the request did not take effect
    ErrorCode(1, "WhatsAppTransientError", _RETRY, 500, "An unknown error occurred",
              "Meta reported an unknown, temporary error; it is safe to try again."),
    ErrorCode(2, "WhatsAppTransientError", _RETRY, 503, "Service temporarily unavailable",
              "Meta's service is temporarily unavailable; it is safe to try again."),
    ErrorCode(4, "WhatsAppRateLimitError", _RETRY, 429, "Application request limit reached",
              "The app reached its Graph API call limit; slow down."),
    ErrorCode(80007, "WhatsAppRateLimitError", _RETRY, 429, "Rate limit issues",
              "The WhatsApp Business Account reached its rate limit; slow down."),
    ErrorCode(130429, "WhatsAppRateLimitError", _RETRY, 429, "Rate limit hit",
              f"The phone number's message throughput was exceeded ({GRAPH_MESSAGES_PER_SECOND} "
              "messages/s by default); slow down."),
    ErrorCode(PAIR_RATE_LIMIT, "WhatsAppPairRateLimitError", _RETRY, 400,
              "(Business Account, Consumer Account) pair rate limit hit",
              "Too many messages to the same recipient in a short time (about one per "
              f"{PAIR_RATE_INTERVAL_SECONDS:g} s); wait before sending to this recipient again."),
    ErrorCode(131000, "WhatsAppTransientError", _RETRY, 500, "Something went wrong",
              "Meta could not process the request; it is safe to try again."),
    ErrorCode(131016, "WhatsAppTransientError", _RETRY, 503, "Service unavailable",
              "A WhatsApp service is temporarily unavailable; try again."),
    ErrorCode(133004, "WhatsAppTransientError", _RETRY, 503, "Server temporarily unavailable",
              "The WhatsApp server is temporarily unavailable; try again."),
    # --- permanent: fail the task, say why
    ErrorCode(10, "WhatsAppPermissionError", _FAIL, 403,
              "Application does not have permission for this action",
              "The app lacks a permission for this call: check that the WhatsApp connection in Maton "
              "granted whatsapp_business_messaging and whatsapp_business_management."),
    ErrorCode(INVALID_PARAMETER, "WhatsAppInvalidParameterError", _FAIL, 400, "Invalid parameter",
              "A parameter is invalid; check the payload against the API."),
    ErrorCode(INVALID_ACCESS_TOKEN, "WhatsAppAuthError", _FAIL, 401,
              "Invalid OAuth access token - Cannot parse access token",
              "The WhatsApp access token expired or was revoked: reconnect WhatsApp Business in Maton "
              "(or renew the Meta token)."),
    # Meta's OpenAPI description answers a request without a token with 401 and code 104 (190 is for a
    # token that is there but invalid or expired)
    ErrorCode(MISSING_ACCESS_TOKEN, "WhatsAppAuthError", _FAIL, 401,
              "An access token is required to request this resource",
              "The request carried no access token: set the Maton API key (or the Meta access token) on "
              "the connection."),
    ErrorCode(MISSING_PARAMETER, "WhatsAppInvalidParameterError", _FAIL, 400, "Required parameter is missing",
              "A required parameter is missing."),
    ErrorCode(INVALID_PARAMETER_VALUE, "WhatsAppInvalidParameterError", _FAIL, 400,
              "Parameter value is not valid",
              "A parameter value is invalid."),
    ErrorCode(UNDELIVERABLE, "WhatsAppUndeliverableError", _FAIL, 400, "Message Undeliverable",
              "The message could not be delivered: the recipient may not use WhatsApp, may have an old "
              "app version, or has not accepted the latest terms."),
    ErrorCode(131030, "WhatsAppRecipientNotAllowedError", _FAIL, 400,
              "Recipient phone number not in allowed list",
              "The recipient is not in the allowed list of this test phone number: add it in the Meta "
              "developer console, or send from a production number."),
    ErrorCode(131031, "WhatsAppAccountLockedError", _FAIL, 400, "Business Account locked",
              "The WhatsApp Business Account is locked or restricted (policy violation or failed "
              "verification); see Business Support in Meta's Business Manager."),
    ErrorCode(RE_ENGAGEMENT, "WhatsAppReEngagementError", _FAIL, 400, "Re-engagement message",
              "More than 24 hours have passed since the recipient last wrote to this number, so a "
              "free-form message cannot be sent: send an approved template instead "
              "(WhatsAppSendTemplateOperator)."),
    ErrorCode(131051, "WhatsAppUnsupportedMessageError", _FAIL, 400, "Unsupported message type",
              "This message type is not supported."),
    ErrorCode(MEDIA_UPLOAD_ERROR, "WhatsAppInvalidParameterError", _FAIL, 400, "Media upload error",
              "The media file could not be used: check its type and size against WhatsApp's limits."),
    ErrorCode(TEMPLATE_PARAMETER_COUNT, "WhatsAppTemplateParameterCountError", _FAIL, 400,
              "Number of parameters does not match the expected number of params",
              "The number of template parameters does not match the number of placeholders in the "
              "approved template."),
    ErrorCode(TEMPLATE_NOT_FOUND, "WhatsAppTemplateNotFoundError", _FAIL, 400,
              "Template name does not exist in the translation",
              "The template does not exist in this language, or is not approved yet: check its name and "
              "language code (a template approved in en_US does not exist in en)."),
    ErrorCode(TEMPLATE_TEXT_TOO_LONG, "WhatsAppTemplateError", _FAIL, 400, "Translated text too long",
              "A template parameter makes the message longer than WhatsApp allows."),
    ErrorCode(TEMPLATE_PARAMETER_FORMAT, "WhatsAppTemplateParameterFormatError", _FAIL, 400,
              "Parameter format does not match format in the created template",
              "A template parameter does not have the format the template expects."),
    ErrorCode(TEMPLATE_PAUSED, "WhatsAppTemplateError", _FAIL, 400, "Template is paused",
              "The template is paused for low quality: edit it or wait until Meta unpauses it."),
    ErrorCode(133010, "WhatsAppPhoneNotRegisteredError", _FAIL, 400, "Phone number Not Registered",
              "The business phone number is not registered with the WhatsApp Cloud API: register it "
              "before sending."),
)  # fmt: skip

#: Permission errors span a range of codes; each reads as code 10.
PERMISSION_CODES = range(200, 300)
#: Template errors span a range; one not in the table gets :data:`OTHER_TEMPLATE_ERROR`.
TEMPLATE_CODES = range(TEMPLATE_PARAMETER_COUNT, 133000)
OTHER_TEMPLATE_ERROR = ErrorCode(
    0, "WhatsAppTemplateError", _FAIL, 400, "Template error", "The template send was refused."
)
#: What a ``failed`` status webhook says in ``errors[].error_data.details``, for the codes that arrive
#: that way (the message was accepted, then not delivered).
STATUS_ERROR_DETAILS: dict[int, str] = {
    RE_ENGAGEMENT: "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number.",
    UNDELIVERABLE: "Message Undeliverable.",
}
#: ``errors[].href`` of a status webhook: Meta's page of error codes.
ERROR_CODES_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

#: ``error.type`` of Graph's error bodies.
GRAPH_ERROR_TYPE = "OAuthException"


def lookup(code: int | None) -> ErrorCode | None:
    """The table's row for a Graph error code, or ``None`` for a code the provider does not know."""
    if code is None:
        return None
    if code in ERROR_CODES:
        return ERROR_CODES[code]
    if code in PERMISSION_CODES:
        return ERROR_CODES[10]
    if code in TEMPLATE_CODES:
        return OTHER_TEMPLATE_ERROR
    return None
