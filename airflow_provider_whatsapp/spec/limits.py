"""WhatsApp's numbers: lengths, counts, sizes, ranges and rates.

Message models, template checks, the hook, the bulk engine and the sandbox all read from here, so a
limit that changes is changed once. Allowed values live in :mod:`.vocabulary`, text rules in
:mod:`.grammar`, error codes in :mod:`.error_codes`.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024
KB = 1024

# Text and captions
TEXT_BODY_MAX = 4096
MEDIA_CAPTION_MAX = 1024

# Interactive messages
INTERACTIVE_HEADER_TEXT_MAX = 60
INTERACTIVE_BODY_MAX = 1024
INTERACTIVE_FOOTER_MAX = 60
REPLY_BUTTONS_MIN = 1
REPLY_BUTTONS_MAX = 3
REPLY_BUTTON_TITLE_MAX = 20
REPLY_BUTTON_ID_MAX = 256
LIST_BUTTON_TEXT_MAX = 20
LIST_SECTIONS_MIN = 1
LIST_SECTIONS_MAX = 10
LIST_SECTION_TITLE_MAX = 24
LIST_ROWS_TOTAL_MAX = 10
LIST_ROW_ID_MAX = 200
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
CTA_URL_DISPLAY_TEXT_MAX = 20
# Flows: the call-to-action button's text
FLOW_CTA_MAX = 30
# Multi-product messages: sections, and products in each section
PRODUCT_LIST_SECTIONS_MIN = 1
PRODUCT_LIST_SECTIONS_MAX = 10
PRODUCT_ITEMS_MIN = 1
PRODUCT_ITEMS_MAX = 30

# Reactions: one emoji, which may take several code points (skin tones, flags, ZWJ sequences)
REACTION_EMOJI_MAX_CHARS = 10

# Contacts
CONTACTS_MIN = 1
CONTACTS_MAX = 5

# Templates
TEMPLATE_NAME_MAX = 512
TEMPLATE_HEADER_PARAMETER_MAX = 60
TEMPLATE_BODY_PARAMETER_MAX = 1024
TEMPLATE_HEADER_TEXT_MAX = 60
TEMPLATE_BODY_TEXT_MAX = 1024
TEMPLATE_FOOTER_TEXT_MAX = 60
TEMPLATE_BUTTONS_MAX = 10
TEMPLATE_BUTTON_LABEL_MAX = 25
# Message templates a WhatsApp Business Account may hold (a business not yet verified by Meta)
TEMPLATES_PER_ACCOUNT_MAX = 250
# An authentication template's code expires after this many minutes (its footer's code_expiration_minutes)
AUTH_CODE_EXPIRATION_MINUTES_MIN = 1
AUTH_CODE_EXPIRATION_MINUTES_MAX = 90
# Template listing follows at most this many pages (an account has a few hundred templates at most;
# a server that never stops pointing to a next page must not keep a task listing forever)
MAX_TEMPLATE_PAGES = 1000

# Recipients: digits after stripping "+", spaces, "-" and parentheses
RECIPIENT_MIN_DIGITS = 8
RECIPIENT_MAX_DIGITS = 15

# Location
LATITUDE_RANGE = (-90.0, 90.0)
LONGITUDE_RANGE = (-180.0, 180.0)


@dataclass(frozen=True)
class MediaRule:
    """What WhatsApp accepts for one media type: MIME types and the largest file in bytes."""

    media_type: str
    mime_types: frozenset[str]
    max_bytes: int

    def accepts(self, mime_type: str) -> bool:
        return not self.mime_types or mime_type in self.mime_types


MEDIA_RULES: dict[str, MediaRule] = {
    "image": MediaRule("image", frozenset({"image/jpeg", "image/png"}), 5 * MB),
    "video": MediaRule("video", frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
    "audio": MediaRule(
        "audio",
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
        16 * MB,
    ),
    # Any MIME type is a valid document; only the size is limited.
    "document": MediaRule("document", frozenset(), 100 * MB),
    "sticker": MediaRule("sticker", frozenset({"image/webp"}), 100 * KB),
}
ANIMATED_STICKER_MAX_BYTES = 500 * KB
# The largest media file of any type
MEDIA_MAX_BYTES = max(rule.max_bytes for rule in MEDIA_RULES.values())

# Maton's gateway allows this many requests per second per account
MATON_REQUESTS_PER_SECOND = 10
# Meta's default throughput per business phone number
GRAPH_MESSAGES_PER_SECOND = 80
# The provider's own limiter (``rate_limit``): 0 turns it off; otherwise at least one request every 10 s
# (slower would park each request for minutes) and at most 1000/s (far above any WhatsApp throughput).
RATE_LIMIT_MIN_PER_SECOND = 0.1
RATE_LIMIT_MAX_PER_SECOND = 1000.0
# Meta's pair rate limit: about one message every 6 s to the same recipient
PAIR_RATE_INTERVAL_SECONDS = 6.0
# The longest a bulk send holds one recipient back after repeated pair-rate errors (the wait doubles
# from PAIR_RATE_INTERVAL_SECONDS up to this)
PAIR_RATE_MAX_WAIT_SECONDS = 60.0
# Free-form messages may only go to a recipient who wrote within this window; templates at any time
CUSTOMER_SERVICE_WINDOW_SECONDS = 24 * 60 * 60

# --- webhooks (inbound) ---------------------------------------------------------------------------
# Defensive bounds on what a webhook delivery may hold: Meta's own payloads stay far below each, so a
# delivery beyond one is not Meta's and is refused whole.
# Meta's webhook payloads are at most 3 MB
WEBHOOK_BODY_MAX_BYTES = 3 * MB
# Events (messages + statuses) in one delivery; Meta batches at most a few hundred
WEBHOOK_EVENTS_MAX = 1000
# A message id (``wamid.`` and a base64 blob, about 60 characters today)
WAMID_MAX_CHARS = 128
# A Graph object id in a delivery (phone number id, WABA id): digits
GRAPH_ID_MAX_DIGITS = 30
# An inbound message's type, an interactive reply's kind, a button or row id and title
WEBHOOK_TYPE_MAX_CHARS = 60
WEBHOOK_REPLY_ID_MAX_CHARS = REPLY_BUTTON_ID_MAX
WEBHOOK_REPLY_TITLE_MAX_CHARS = 256
# An inbound text or caption (WhatsApp users may write up to 64 K characters; a margin above it)
WEBHOOK_TEXT_MAX_CHARS = 100_000
# A sender's profile name, and an error's title, message and details in a failed status
WEBHOOK_NAME_MAX_CHARS = 256
WEBHOOK_ERROR_TEXT_MAX_CHARS = 2048
# A webhook callback URL given to subscribe_webhooks: far above any real URL, it keeps a templated
# megabyte out of a request
WEBHOOK_CALLBACK_URL_MAX_CHARS = 2048
# Through Maton the path token is the receiver's only credential: shorter ones are refused (32 random
# URL-safe characters carry about 190 bits)
WEBHOOK_PATH_TOKEN_MIN_CHARS = 32
# The verify token travels in the verification request's query string
WEBHOOK_VERIFY_TOKEN_MAX_CHARS = 256
# Meta's verification challenge (a number today), echoed back only this long
HUB_CHALLENGE_MAX_CHARS = 256
# A webhook timestamp is unix seconds as digits (ten of them until the year 2286)
WEBHOOK_TIMESTAMP_MAX_DIGITS = 10
# An event dated further ahead than this (clock skew allowed) is not stored: it would hold a
# customer-service window open, or a status "current", long after the fact
WEBHOOK_FUTURE_SKEW_SECONDS = 300

# --- the event store --------------------------------------------------------------------------------
# How long stored events are kept by default (the ``events_retention_days`` extra)
EVENTS_RETENTION_DAYS_DEFAULT = 30
# ... and at most (ten years: a larger number is a typo)
EVENTS_RETENTION_DAYS_MAX = 3650
# The inbound feed is read with this much overlap, so a message whose write began before a later one's
# but finished after it is still read (see ``EventStore.inbound_after``)
EVENTS_FEED_OVERLAP_SECONDS = 60
# The receiver removes expired events at most this often
EVENTS_EXPIRE_INTERVAL_SECONDS = 1800

# The sandbox's emulation of Meta's webhook re-delivery: a delivery the receiver does not answer with
# 2xx (or at all) is tried again after SANDBOX_WEBHOOK_RETRY_FIRST_SECONDS, the wait doubling up to
# SANDBOX_WEBHOOK_RETRY_MAX_SECONDS (Meta retries for days with waits of minutes to hours; the sandbox
# keeps the same shape, short, so tests and demos see the re-delivery at once).
SANDBOX_WEBHOOK_RETRY_FIRST_SECONDS = 0.03
SANDBOX_WEBHOOK_RETRY_MAX_SECONDS = 2.0
# Seconds the sandbox waits for a receiver's answer to one delivery (or to the verification request)
SANDBOX_WEBHOOK_TIMEOUT_SECONDS = 10.0


def sandbox_webhook_backoff(attempts: int) -> float:
    """Seconds before the sandbox re-delivers a webhook that failed ``attempts`` times (1 or more)."""
    return min(
        SANDBOX_WEBHOOK_RETRY_MAX_SECONDS,
        SANDBOX_WEBHOOK_RETRY_FIRST_SECONDS * 2.0 ** min(max(0, attempts - 1), 60),
    )


# Failed (and unknown) recipients a bulk send lists in its XCom result by default: XCom lives in the
# metadata database, so it stays small; the journal keeps every one
MAX_FAILURES_IN_XCOM = 100

# Business profile fields
PROFILE_ABOUT_MAX = 139
PROFILE_ADDRESS_MAX = 256
PROFILE_DESCRIPTION_MAX = 512
PROFILE_EMAIL_MAX = 128
PROFILE_WEBSITES_MAX = 2
PROFILE_WEBSITE_MAX = 256
#: The business profile's text fields and the longest value of each.
PROFILE_TEXT_MAX = {
    "about": PROFILE_ABOUT_MAX,
    "address": PROFILE_ADDRESS_MAX,
    "description": PROFILE_DESCRIPTION_MAX,
    "email": PROFILE_EMAIL_MAX,
}


def default_rate(via_maton: bool) -> float:
    """Requests per second when the connection sets no ``rate_limit``: Maton's per-account limit
    through the gateway, Meta's per-number throughput for Graph direct.
    """
    return float(MATON_REQUESTS_PER_SECOND if via_maton else GRAPH_MESSAGES_PER_SECOND)


def media_type_for_mime(mime_type: str) -> str:
    """The WhatsApp media type a MIME type uploads as (documents take anything else)."""
    for rule in MEDIA_RULES.values():
        if rule.mime_types and mime_type in rule.mime_types:
            return rule.media_type
    return "document"


#: How many leading bytes :func:`is_animated_webp` needs.
WEBP_HEADER_BYTES = 21


def is_animated_webp(head: bytes) -> bool:
    """Whether a file starting with ``head`` is an animated WebP (WhatsApp allows those stickers 500 KB).

    An animated WebP is an extended one: ``RIFF`` <size> ``WEBP`` then a ``VP8X`` chunk whose flags byte
    (offset 20) has the animation bit set.

    :param head: the file's first bytes (at least :data:`WEBP_HEADER_BYTES` of them; more is fine).
    """
    return (
        len(head) >= WEBP_HEADER_BYTES
        and head[:4] == b"RIFF"
        and head[8:16] == b"WEBPVP8X"
        and bool(head[20] & 0x02)
    )


def check_media(media_type: str, mime_type: str, size: int, *, animated: bool = False) -> None:
    """Raise ``ValueError`` naming the limit when WhatsApp would refuse this media file."""
    rule = MEDIA_RULES.get(media_type)
    if rule is None:
        raise ValueError(f"media type {media_type!r} is not one of {', '.join(MEDIA_RULES)}")
    if not rule.accepts(mime_type):
        allowed = ", ".join(sorted(rule.mime_types))
        raise ValueError(
            f"{media_type} MIME type {mime_type!r} is not accepted by WhatsApp (allowed: {allowed})"
        )
    limit = ANIMATED_STICKER_MAX_BYTES if media_type == "sticker" and animated else rule.max_bytes
    if size > limit:
        raise ValueError(
            f"{media_type} file is {size} bytes; WhatsApp accepts at most {limit} bytes "
            f"({_human(limit)}) for this type"
        )


def _human(size: int) -> str:
    return f"{size // MB} MB" if size >= MB else f"{size // KB} KB"


# Host names of this machine: a connection to one of them gets http by default, and the sandbox answers
# only requests addressed to one of them
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

# Worker processes one bulk send may use (``processes``): enough for Meta's highest tier on any
# machine a task runs on, few enough that a typo cannot fork a host to its knees.
MAX_BULK_PROCESSES = 32
