"""pytest plugin (entry point ``pytest11``): the ``whatsapp_sandbox`` fixture for testing DAGs offline.

.. code-block:: python

    def test_my_dag_sends_the_report(whatsapp_sandbox, tmp_path):
        my_dag.test()
        (message,) = whatsapp_sandbox.messages_to("14155550100")
        assert message.type == "template"

The fixture starts a sandbox on a free port and points the ``maton_default`` Airflow connection at it
for the test's duration. Mark a test to change the sandbox's behaviour, e.g.
``@pytest.mark.whatsapp_sandbox(require_window=True, approval_delay=0)``.

This module is imported by every pytest run once the provider is installed, so it imports nothing
heavy (no Airflow: a project's conftest may need to configure Airflow before it is imported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox

CONN_ENV = "AIRFLOW_CONN_MATON_DEFAULT"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "whatsapp_sandbox(**settings): settings for the whatsapp_sandbox fixture (require_window, "
        "approval_delay, rate_limit, auto_deliver, api_key, seed)",
    )


@pytest.fixture
def whatsapp_sandbox(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WhatsAppSandbox]:
    """A running WhatsApp sandbox; ``maton_default`` points at it while the test runs."""
    from airflow_provider_whatsapp.sandbox.controller import WhatsAppSandbox

    settings: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("whatsapp_sandbox"))):
        settings.update(marker.kwargs)
    with WhatsAppSandbox(port=0, **settings) as sandbox:
        monkeypatch.setenv(CONN_ENV, sandbox.connection_json())
        yield sandbox
