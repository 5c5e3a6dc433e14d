"""A running sandbox for scripts and tests: start, stop, read what was sent, steer its behaviour."""

from __future__ import annotations

import json
import re
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow_provider_whatsapp.sandbox import inbox
from airflow_provider_whatsapp.sandbox.server import HOST, SandboxServer
from airflow_provider_whatsapp.sandbox.state import (
    DEFAULT_API_KEY,
    DEFAULT_CONNECTION_ID,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_WABA_ID,
    Fault,
    Message,
    SandboxState,
    Template,
)
from airflow_provider_whatsapp.sandbox.webhooks import StatusTimer, WebhookSender, check_callback_url

if TYPE_CHECKING:
    from collections.abc import Iterator


class WhatsAppSandbox:
    """A running sandbox on ``127.0.0.1``, for scripts and tests.

    >>> with WhatsAppSandbox() as sb:  # doctest: +SKIP
    ...     os.environ["AIRFLOW_CONN_MATON_DEFAULT"] = sb.connection_json()
    ...     ...
    ...     sb.messages_to("14155550100")

    :param port: TCP port; 0 picks a free one (see :attr:`url`).
    :param api_key: the key (Maton API key, or Graph token) the sandbox accepts.
    :param kwargs: passed to :class:`~airflow_provider_whatsapp.sandbox.state.SandboxState`
        (``approval_delay``, ``require_window``, ``rate_limit``, ``auto_deliver``, ``seed``,
        ``webhook_url``, ``app_secret``, ``sent_delay``, ``delivered_delay``, ``read_delay``,
        ``unreachable``).
    """

    phone_number_id = DEFAULT_PHONE_NUMBER_ID
    waba_id = DEFAULT_WABA_ID
    connection_id = DEFAULT_CONNECTION_ID

    def __init__(self, port: int = 0, *, api_key: str = DEFAULT_API_KEY, **kwargs: Any) -> None:
        self.api_key = api_key
        self.state = SandboxState(api_keys=(api_key,), **kwargs)
        self._port = port
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._workers: list[StatusTimer | WebhookSender] = []

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> WhatsAppSandbox:
        self._server = SandboxServer(self._port, self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="whatsapp-sandbox",
            daemon=True,
        )
        self._thread.start()
        self._workers = [StatusTimer(self.state), WebhookSender(self.state)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers = []
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WhatsAppSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # --- pointing Airflow at it -----------------------------------------------------------------

    def connection_dict(self, **extra: Any) -> dict[str, Any]:
        """A ``maton`` Airflow connection to this sandbox, as a dict (``extra`` adds/overrides fields)."""
        values = {"phone_number_id": self.phone_number_id, "waba_id": self.waba_id, **extra}
        return {
            "conn_type": "maton",
            "host": self.url,
            "password": self.api_key,
            "extra": {k: v for k, v in values.items() if v is not None},
        }

    def connection_json(self, **extra: Any) -> str:
        """The value for ``AIRFLOW_CONN_MATON_DEFAULT``."""
        return json.dumps(self.connection_dict(**extra))

    # --- what was sent --------------------------------------------------------------------------

    def messages_to(self, wa_id: str | None = None) -> list[Message]:
        """Messages the business sent, oldest first; to one recipient (digits only) or to everyone."""
        return self.state.messages_to(_digits(wa_id) if wa_id else None)

    @property
    def messages(self) -> list[Message]:
        return self.state.messages_to(None)

    def recipients(self) -> list[str]:
        return sorted({m.wa_id for m in self.messages})

    def transcript(self) -> str:
        """What each recipient received, as text (the demo prints it)."""
        return inbox.transcript(self.state)

    def requests(self, method: str | None = None, path: str | None = None) -> list[Any]:
        with self.state.lock:
            return [
                r
                for r in self.state.requests
                if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))
            ]

    def templates(self) -> list[Template]:
        return self.state.list_templates()

    # --- what the recipient does ----------------------------------------------------------------

    def add_inbound(self, wa_id: str, text: str | None = None, **kwargs: Any) -> Message:
        """The recipient writes to the business (opens the 24-hour window).

        See :meth:`~airflow_provider_whatsapp.sandbox.state.SandboxState.add_inbound` for the options.
        """
        return self.state.add_inbound(_digits(wa_id), text=text, **kwargs)

    def reply(self, message_id: str, **choice: Any) -> Message:
        """The recipient answers ``message_id``: ``button_id=``, ``row_id=``, ``button_index=`` (a
        template's quick-reply button) or ``text=``; it arrives as an inbound webhook quoting it."""
        return self.state.reply(message_id, **choice)

    def set_status(self, message_id: str, status: str, *, error_code: int | None = None) -> Message:
        found = self.state.set_status(message_id, status, error_code=error_code)
        if found is None:
            raise KeyError(f"no message {message_id}")
        return found

    # --- behaviour ------------------------------------------------------------------------------

    def configure(self, **settings: Any) -> None:
        self.state.configure(**settings)

    def set_webhook(self, url: str | None, *, app_secret: str | None = None) -> None:
        """POST the webhook events from now on to ``url`` (``None``: stop), signed with ``app_secret``
        (without one, with a secret nobody is told, as through Maton). No verification request: for
        that, subscribe as WhatsApp is subscribed (``MatonHook.subscribe_webhooks``)."""
        if url is not None:
            check_callback_url(url)
        self.configure(webhook_url=url, app_secret=app_secret)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """How each event's delivery went: ``state`` (delivered or pending), ``attempts``, ``last_error``."""
        with self.state.lock:
            return [d.as_json() for d in self.state.deliveries]

    def inject_fault(self, **fields: Any) -> Fault:
        """Fail API requests on purpose; see :class:`~airflow_provider_whatsapp.sandbox.state.Fault`."""
        return self.state.add_fault(Fault(**fields))

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def advance_clock(self, seconds: float) -> None:
        self.state.clock.advance(seconds)

    def reset(self) -> None:
        self.state.reset()

    @contextmanager
    def labelled(self, label: str | None) -> Iterator[None]:
        """Tag the messages sent meanwhile (the demo tags each DAG's)."""
        previous = self.state.label
        self.configure(label=label)
        try:
            yield
        finally:
            self.configure(label=previous)


def wait_until_stopped() -> None:
    """Block until Ctrl-C or SIGTERM (also when started in the background, where SIGINT is ignored)."""
    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
    while not stop.wait(1.0):
        pass


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)
