"""The Maton connection form, as data: Airflow 3 reads it from provider info, Airflow 2 from the hook.

Each extra field is declared once in :data:`EXTRA_FIELDS`; :data:`CONNECTION_UI` (Airflow 3's
``conn-fields`` and ``ui-field-behaviour``) and :func:`airflow2_widgets` (the hook's
``get_connection_form_widgets``) are both built from it, so the two forms cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_whatsapp.hooks._defaults import (
    DEFAULT_API_VERSION,
    DEFAULT_APP,
    DEFAULT_HOST,
    GRAPH_DIRECT_APP,
)
from airflow_provider_whatsapp.spec.limits import (
    EVENTS_RETENTION_DAYS_DEFAULT,
    GRAPH_MESSAGES_PER_SECOND,
    MATON_REQUESTS_PER_SECOND,
)


@dataclass(frozen=True)
class ExtraField:
    """One field of the connection form stored in the connection's extra.

    :param name: the key in the extra JSON.
    :param label: the field's label.
    :param placeholder: the grey example text inside the empty field.
    :param help: the help text under the field.
    :param kind: ``"string"`` or ``"number"``.
    :param default: the value a new connection's form starts with (``None``: empty).
    :param minimum: the smallest number accepted (numbers only).
    """

    name: str
    label: str
    placeholder: str
    help: str
    kind: str = "string"
    default: Any = None
    minimum: float | None = None

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": [self.kind, "null"]}
        if self.default is not None:
            schema["default"] = self.default
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        return schema


EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        name="phone_number_id",
        label="Phone number id",
        placeholder="106540352242922",
        help="The id of the business phone number to send from (WhatsApp Manager > API setup), "
        "not the number itself. Operators may override it.",
    ),
    ExtraField(
        name="waba_id",
        label="WhatsApp Business Account id",
        placeholder="102290129340398",
        help="The WhatsApp Business Account that owns the message templates; needed to create, "
        "list or wait for templates.",
    ),
    ExtraField(
        name="connection_id",
        label="Maton connection id",
        placeholder="empty: Maton's oldest active WhatsApp connection",
        help="Sent as the Maton-Connection header to choose among several WhatsApp connections; "
        "empty uses the oldest active one. Not used for Graph direct.",
    ),
    ExtraField(
        name="api_version",
        label="Graph API version",
        placeholder=DEFAULT_API_VERSION,
        help=f"The Graph API version in every request's path; default {DEFAULT_API_VERSION}.",
        default=DEFAULT_API_VERSION,
    ),
    ExtraField(
        name="app",
        label="Gateway app path",
        placeholder=DEFAULT_APP,
        help=f"The path segment after the gateway URL; default {DEFAULT_APP}. For Meta's Graph API "
        f"directly, write {GRAPH_DIRECT_APP}, set the URL to https://graph.facebook.com and put a Meta "
        "access token in the key field.",
        default=DEFAULT_APP,
    ),
    ExtraField(
        name="ctrl_url",
        label="Maton control plane URL",
        placeholder=f"empty: the gateway URL ({DEFAULT_HOST})",
        help="Where Maton lists and manages connections; empty uses the gateway URL "
        "(https://ctrl.maton.ai for the older gateway.maton.ai).",
    ),
    ExtraField(
        name="rate_limit",
        label="Rate limit (requests per second)",
        placeholder=f"empty: {MATON_REQUESTS_PER_SECOND} through Maton, {GRAPH_MESSAGES_PER_SECOND} direct",
        help=f"Requests per second from one process; default {MATON_REQUESTS_PER_SECOND} through Maton, "
        f"{GRAPH_MESSAGES_PER_SECOND} for Graph direct; 0 turns the limit off.",
        kind="number",
        minimum=0,
    ),
    ExtraField(
        name="events_path",
        label="Webhook events location",
        placeholder="empty: $AIRFLOW_HOME/whatsapp-events",
        help="Where received webhook events are stored: a directory, or a URL such as s3://bucket/events "
        "when the receiver, workers and triggerer run on different machines.",
    ),
    ExtraField(
        name="events_retention_days",
        label="Webhook events retention (days)",
        placeholder=f"empty: {EVENTS_RETENTION_DAYS_DEFAULT}",
        help="How long received webhook events are kept.",
        kind="number",
        minimum=0,
    ),
    ExtraField(
        name="webhook_verify_token",
        label="Webhook verify token",
        placeholder="a random string you also give Meta (or subscribe_webhooks)",
        help="Meta's verification request must carry this token.",
    ),
    ExtraField(
        name="webhook_app_secret",
        label="Webhook app secret (Graph direct)",
        placeholder="the Meta app's secret",
        help="Deliveries must carry X-Hub-Signature-256 made with this secret. For Graph direct.",
    ),
    ExtraField(
        name="webhook_path_token",
        label="Webhook path token (through Maton)",
        placeholder="a long random token, e.g. 32 random bytes in hex",
        help="Deliveries must come to /whatsapp/webhook/<this token>. Through Maton, whose app signs "
        "deliveries with a secret you never see.",
    ),
)

#: The standard fields' placeholders.
_STANDARD_PLACEHOLDERS = {
    "description": "What this connection is for, e.g. the on-call alerts number",
    "host": DEFAULT_HOST,
    "password": "Maton API key (or a Meta access token for Graph direct)",
    "extra": '{"phone_number_id": "...", "waba_id": "..."}',
}

#: The connection form, in the declarative shape Airflow 3 reads from provider info.
CONNECTION_UI: dict[str, Any] = {
    "conn-fields": {
        field.name: {"label": field.label, "schema": field.json_schema(), "description": field.help}
        for field in EXTRA_FIELDS
    },
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "login"],
        "relabeling": {"host": "Gateway URL", "password": "Maton API key"},
        "placeholders": {
            **_STANDARD_PLACEHOLDERS,
            **{field.name: field.placeholder for field in EXTRA_FIELDS},
        },
    },
}


def airflow2_widgets() -> dict[str, Any]:
    """The extra fields as Airflow 2's Flask-AppBuilder form fields (imported only on Airflow 2)."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import FloatField, StringField
    from wtforms.validators import NumberRange, Optional

    widgets: dict[str, Any] = {}
    for field in EXTRA_FIELDS:
        if field.kind == "number":
            validators = [Optional(), NumberRange(min=field.minimum)] if field.minimum is not None else []
            widget = FloatField(
                lazy_gettext(field.label),
                widget=BS3TextFieldWidget(),
                description=field.help,
                default=field.default,
                validators=validators,
            )
        else:
            widget = StringField(
                lazy_gettext(field.label),
                widget=BS3TextFieldWidget(),
                description=field.help,
                default=field.default,
            )
        widgets[field.name] = widget
    return widgets
