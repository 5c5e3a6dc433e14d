"""What every WhatsApp operator shares: the connection arguments and a hook built at run time."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import BaseOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_whatsapp.hooks.maton import MatonHook


class WhatsAppBaseOperator(BaseOperator):
    """Base of the WhatsApp operators: holds where to send from, builds the hook in ``execute``.

    :param maton_conn_id: Airflow connection of type ``maton``.
    :param phone_number_id: business phone number to use; defaults to the connection's extra.
    :param connection_id: Maton connection to go through (``Maton-Connection``); defaults to the
        connection's extra, else Maton's oldest active WhatsApp connection.
    """

    template_fields: Sequence[str] = ("phone_number_id", "connection_id")
    ui_color = "#25D366"

    def __init__(
        self,
        *,
        maton_conn_id: str = "maton_default",
        phone_number_id: str | None = None,
        connection_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.maton_conn_id = maton_conn_id
        self.phone_number_id = phone_number_id
        self.connection_id = connection_id

    @cached_property
    def hook(self) -> MatonHook:
        """The hook, created on first use inside ``execute`` (never at DAG parse time)."""
        from airflow_provider_whatsapp.hooks.maton import MatonHook

        return MatonHook(
            self.maton_conn_id,
            connection_id=self.connection_id or None,
            phone_number_id=self.phone_number_id or None,
        )
