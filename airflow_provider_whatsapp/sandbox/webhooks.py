"""The sandbox speaks webhooks as WhatsApp does: it verifies a callback URL, signs each event and
POSTs it there from a background thread, again and again with backoff until the receiver answers 2xx.

Two threads run beside the HTTP server: :class:`StatusTimer` moves accepted messages on (sent,
delivered, read, or failed) when their time comes, and :class:`WebhookSender` delivers the events those
steps (and inbound messages) produce. A send is answered at once; neither thread ever holds a request.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import secrets
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from airflow_provider_whatsapp.sandbox.validation import GraphError
from airflow_provider_whatsapp.spec import error_codes, vocabulary
from airflow_provider_whatsapp.spec.limits import LOOPBACK_HOSTS, SANDBOX_WEBHOOK_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from airflow_provider_whatsapp.sandbox.state import SandboxState, WebhookDelivery

# The most of a receiver's answer the sandbox reads (a challenge echo, or an error page it ignores).
_ANSWER_MAX = 64 * 1024
# Meta's webhook requests name themselves so.
USER_AGENT = "facebookexternalua"


def signature(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256 with ``secret``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{vocabulary.WEBHOOK_SIGNATURE_PREFIX}{digest}"


def check_callback_url(url: object, field: str = "webhook_url") -> str:
    """``url`` if the sandbox may call it: http(s) on this machine (nothing the sandbox sends leaves it)."""
    if not isinstance(url, str) or not url:
        raise GraphError(100, f"Param {field} must be a URL.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise GraphError(100, f"Param {field} must be an http or https URL.")
    if parts.hostname.lower() not in LOOPBACK_HOSTS and f"[{parts.hostname}]" not in LOOPBACK_HOSTS:
        raise GraphError(
            100, f"Param {field}: the sandbox only calls this machine ({', '.join(sorted(LOOPBACK_HOSTS))})."
        )
    if parts.username is not None or parts.fragment:
        raise GraphError(100, f"Param {field} must not carry credentials or a fragment.")
    return url


def _request(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request to the receiver; never follows a redirect (Meta does not either)."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=SANDBOX_WEBHOOK_TIMEOUT_SECONDS)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=body, headers={"User-Agent": USER_AGENT, **headers})
        answer = connection.getresponse()
        return answer.status, answer.read(_ANSWER_MAX)
    finally:
        connection.close()


def verify_callback(url: str, verify_token: str) -> None:
    """Meta's verification request: GET the callback with ``hub.mode=subscribe``, the verify token and a
    challenge; the subscription stands only if the answer is 200 with the challenge as its body."""
    challenge = str(secrets.randbelow(10**9) + 10**9)
    query = urlencode(
        {
            vocabulary.WEBHOOK_MODE_PARAM: vocabulary.WEBHOOK_SUBSCRIBE_MODE,
            vocabulary.WEBHOOK_VERIFY_TOKEN_PARAM: verify_token,
            vocabulary.WEBHOOK_CHALLENGE_PARAM: challenge,
        }
    )
    separator = "&" if urlsplit(url).query else "?"
    try:
        status, answer = _request("GET", f"{url}{separator}{query}", None, {})
    except (OSError, http.client.HTTPException) as error:
        problem = f"Couldn't connect to server ({type(error).__name__})"
    else:
        if status == 200 and answer.strip() == challenge.encode():
            return
        problem = f"HTTP Status Code = {status}" + ("" if status != 200 else "; the challenge was not echoed")
    raise GraphError(
        error_codes.CALLBACK_VERIFICATION_FAILED,
        f"Callback verification failed with the following errors: {problem}",
        message="Callback verification failed",
        status=400,
    )


def deliver(url: str, delivery: WebhookDelivery, secret: str) -> str | None:
    """POST one event; ``None`` when the receiver took it (2xx), else why not."""
    headers = {
        "Content-Type": "application/json",
        vocabulary.WEBHOOK_SIGNATURE_HEADER: signature(delivery.body, secret),
    }
    try:
        status, _ = _request("POST", url, delivery.body, headers)
    except (OSError, http.client.HTTPException) as error:
        return f"{type(error).__name__}: {error}"[:200]
    return None if 200 <= status < 300 else f"HTTP {status}"


class _Worker:
    """A daemon thread that waits on the state's ``wakeup`` condition until stopped."""

    name = "whatsapp-sandbox-worker"

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self.state.wakeup:
            self._stopped = True
            self.state.wakeup.notify_all()
        self._thread.join(timeout=SANDBOX_WEBHOOK_TIMEOUT_SECONDS + 1)

    def _run(self) -> None:
        raise NotImplementedError


class StatusTimer(_Worker):
    """Applies each message's next status when its delay has passed."""

    name = "whatsapp-sandbox-statuses"

    def _run(self) -> None:
        with self.state.wakeup:
            while not self._stopped:
                self.state.wakeup.wait(self.state.run_due())


class WebhookSender(_Worker):
    """Delivers the webhook events to the callback URL, oldest first, retrying with backoff."""

    name = "whatsapp-sandbox-webhooks"

    def _run(self) -> None:
        while True:
            with self.state.wakeup:
                if self._stopped:
                    return
                delivery, wait = self.state.next_delivery()
                if delivery is None:
                    self.state.wakeup.wait(wait)
                    continue
                url, secret = self.state.webhook_url, self.state.signing_secret()
            # Outside the lock: the receiver may take its time (or call the sandbox back).
            error = deliver(str(url), delivery, secret)
            self.state.delivery_result(delivery, error)
