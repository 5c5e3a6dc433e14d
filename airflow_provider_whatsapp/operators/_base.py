"""What every WhatsApp operator shares: the connection arguments and a hook built at run time."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp._compat import BaseOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_whatsapp.hooks.maton import MatonHook


def is_concrete(value: Any) -> bool:
    """Whether ``value`` is final at parse time: no Jinja markup and no ``XComArg`` or other lazy object."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(is_concrete(item) for item in value)
    if isinstance(value, dict):
        return all(is_concrete(k) and is_concrete(v) for k, v in value.items())
    if isinstance(value, os.PathLike):
        return is_concrete(os.fspath(value))
    from pydantic import BaseModel

    return isinstance(value, BaseModel)


def check_ids_if_concrete(**ids: Any) -> None:
    """Check id arguments that are already final at parse time against their shape; ``None`` is skipped.

    The same check runs again in the hook before any request, on the rendered values.

    :param ids: argument name -> value, e.g. ``media_id=...``; names as in :mod:`..hooks._paths`.
    """
    concrete = {k: v for k, v in ids.items() if v is not None and is_concrete(v)}
    if concrete:
        from airflow_provider_whatsapp.hooks._paths import check_id

        for field, value in concrete.items():
            check_id(field, value)


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
        # An empty value means "the connection's", as at run time.
        check_ids_if_concrete(phone_number_id=phone_number_id or None, connection_id=connection_id or None)

    @cached_property
    def hook(self) -> MatonHook:
        """The hook, created on first use inside ``execute`` (never at DAG parse time)."""
        from airflow_provider_whatsapp.hooks.maton import MatonHook

        return MatonHook(
            self.maton_conn_id,
            connection_id=self.connection_id or None,
            phone_number_id=self.phone_number_id or None,
        )
