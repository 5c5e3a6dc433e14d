"""Create and delete WhatsApp message templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.operators._base import WhatsAppBaseOperator, check_ids_if_concrete
from airflow_provider_whatsapp.template_definitions import validate_template

if TYPE_CHECKING:
    from collections.abc import Sequence


class WhatsAppCreateTemplateOperator(WhatsAppBaseOperator):
    """Submit a message template for Meta's review; returns the new template's id (XCom).

    The definition is checked before any request: name ``[a-z0-9_]`` (at most 512 characters), a
    known category, one BODY and at most one HEADER, FOOTER and BUTTONS (at most 10 buttons), and
    placeholders ``{{1}}..{{n}}`` without gaps, each with an example value. What is already concrete is
    checked when the DAG is parsed; the rendered definition once more at run time, by the hook.

    ``components`` is **not** rendered by Jinja: its ``{{1}}`` placeholders are WhatsApp's, not
    Airflow's. Wait for approval with
    :class:`~airflow_provider_whatsapp.sensors.template.WhatsAppTemplateApprovalSensor`.

    :param name: template name (templated).
    :param language: language code, e.g. ``en_US`` (templated).
    :param category: ``AUTHENTICATION``, ``MARKETING`` or ``UTILITY`` (templated).
    :param components: the template's components as Meta's API defines them.
    :param waba_id: WhatsApp Business Account; defaults to the connection's extra (templated).
    :param allow_category_change: let Meta re-categorise the template instead of rejecting it.
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "name",
        "language",
        "category",
        "waba_id",
    )

    def __init__(
        self,
        *,
        name: str,
        language: str,
        category: str,
        components: list[dict[str, Any]],
        waba_id: str | None = None,
        allow_category_change: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.language = language
        self.category = category
        self.components = components
        self.waba_id = waba_id
        self.allow_category_change = allow_category_change
        check_ids_if_concrete(waba_id=waba_id or None)
        validate_template(
            name=name, language=language, category=category, components=components, only_concrete=True
        )

    def execute(self, context: Any) -> str:
        # The rendered definition is checked once, by the hook, before its request: the same check
        # every direct caller of ``create_template`` gets.
        answer = self.hook.create_template(
            name=self.name,
            language=self.language,
            category=self.category,
            components=self.components,
            waba_id=self.waba_id or None,
            allow_category_change=self.allow_category_change,
        )
        template_id = str(answer.get("id", ""))
        self.log.info(
            "Template %s (%s) submitted as %s: status %s, category %s",
            self.name,
            self.language,
            template_id,
            answer.get("status"),
            answer.get("category"),
        )
        return template_id


class WhatsAppDeleteTemplateOperator(WhatsAppBaseOperator):
    """Delete a message template: every language of ``name``, or only the one with ``template_id``.

    :param name: template name (templated).
    :param template_id: delete only this template (one language) rather than all of ``name``
        (templated); an empty value is refused, not read as "every language".
    :param waba_id: WhatsApp Business Account; defaults to the connection's extra (templated).
    """

    template_fields: Sequence[str] = (
        *WhatsAppBaseOperator.template_fields,
        "name",
        "template_id",
        "waba_id",
    )

    def __init__(
        self,
        *,
        name: str,
        waba_id: str | None = None,
        template_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.waba_id = waba_id
        self.template_id = template_id
        check_ids_if_concrete(waba_id=waba_id or None, template_id=template_id)

    def execute(self, context: Any) -> bool:
        from airflow_provider_whatsapp.template_definitions import validate_name

        validate_name(self.name)
        deleted = self.hook.delete_template(
            self.name, template_id=self.template_id, waba_id=self.waba_id or None
        )
        self.log.info("Template %s deleted: %s", self.name, deleted)
        return deleted
