"""MatonHook: every call the provider makes to WhatsApp Business, through Maton or Graph directly."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from typing import IO, TYPE_CHECKING, Any

import httpx

from airflow_provider_whatsapp import __version__
from airflow_provider_whatsapp._compat import (
    AirflowNotFoundException,
    BaseHook,
    aget_connection,
    amask_key,
    connection_extra,
    get_connection,
    mask_key,
)
from airflow_provider_whatsapp.errors import (
    MAY_HAVE_BEEN_DELIVERED,
    WhatsAppConfigurationError,
    WhatsAppDeliveryUnknownError,
    WhatsAppError,
    WhatsAppTransientError,
    WhatsAppValidationError,
)
from airflow_provider_whatsapp.hooks import _control_plane, _paths
from airflow_provider_whatsapp.hooks._answers import answer_part, shape
from airflow_provider_whatsapp.hooks._client_pool import AsyncClients
from airflow_provider_whatsapp.hooks._connection_form import CONNECTION_UI
from airflow_provider_whatsapp.hooks._deadline import deadline, with_deadlines
from airflow_provider_whatsapp.hooks._media_files import (
    check_destination,
    may_send_key,
    open_destination,
    open_media,
)
from airflow_provider_whatsapp.hooks._media_files import remove as remove_file
from airflow_provider_whatsapp.hooks._retry import DEFAULT_MAX_RETRY_AFTER, RetryPolicy
from airflow_provider_whatsapp.hooks._settings import (
    DEFAULT_CONN_ID,
    MatonSettings,
    check_rate_limit,
    finite_number,
    settings_from_connection,
    settings_from_environment,
)
from airflow_provider_whatsapp.hooks._tls import trust_context
from airflow_provider_whatsapp.hooks._transport import (
    API_ANSWER_MAX_BYTES,
    IDEMPOTENT_METHODS,
    ApiRequest,
    BodyReader,
    failure,
    interpret,
    limiter_for,
    quotes_request,
    raise_without_cause,
    send_async,
    send_sync,
)
from airflow_provider_whatsapp.redact import keep_secret
from airflow_provider_whatsapp.spec.limits import MAX_TEMPLATE_PAGES, MB, MEDIA_MAX_BYTES
from airflow_provider_whatsapp.spec.vocabulary import (
    MESSAGING_PRODUCT,
    SUBSCRIPTION_CALLBACK_FIELD,
    SUBSCRIPTION_VERIFY_TOKEN_FIELD,
)
from airflow_provider_whatsapp.template_definitions import validate_template

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    from airflow_provider_whatsapp._compat import ObjectStoragePath

_USER_AGENT = f"airflow-provider-whatsapp/{__version__}"
_PROFILE_FIELDS = "about,address,description,email,profile_picture_url,websites,vertical"
_DOWNLOAD_CHUNK = MB
# A media file may be 100 MB: however short ``timeout`` is, a download gets at least this long.
MIN_DOWNLOAD_TIMEOUT = 300.0
# Answers are read without compression: they are small, and a compressed one could unfold into many
# times its size (one that comes compressed anyway is inflated under the same cap).
_DEFAULT_HEADERS = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}


class MatonHook(BaseHook):
    """Talk to the WhatsApp Business Platform through the Maton API gateway (or Meta's Graph API).

    The connection's password is the Maton API key; its host the gateway (default
    ``https://api.maton.ai``); its extra may hold ``connection_id``, ``phone_number_id``, ``waba_id``,
    ``api_version``, ``ctrl_url``, ``app`` and ``rate_limit``. Without a ``maton_default``
    connection, ``MATON_API_KEY`` (and ``MATON_BASE_URL``) are used.

    :param maton_conn_id: the Airflow connection to use.
    :param connection_id: Maton connection to send through (``Maton-Connection`` header); overrides the
        connection's extra. Without either, Maton uses the oldest active WhatsApp connection.
    :param phone_number_id: business phone number to send from; overrides the connection's extra.
    :param waba_id: WhatsApp Business Account id (templates); overrides the connection's extra.
    :param timeout: the longest one request may take in all: connecting, sending and reading the whole
        answer (a server trickling its answer cannot hold a call longer). A request that runs out of it
        is not tried again within the call.
    :param max_attempts: attempts per request, the first included, for failures that are safe to retry.
    :param max_retry_seconds: no retry starts after this many seconds.
    :param max_retry_after: the longest ``Retry-After`` (seconds or HTTP date) the hook waits for; when a
        server asks for more, the call gives up at once with a retryable error saying how long it asked.
    :param download_timeout: the longest :meth:`download_media` may stream one file, in seconds
        (default: the larger of ``timeout`` and 300 s); a host trickling the bytes cannot hold it longer.
    :param rate_limit: most requests per second from this process for this account
        (default :func:`~airflow_provider_whatsapp.spec.limits.default_rate`: Maton's per-account limit
        through Maton, Meta's per-number throughput for Graph direct; 0 turns the limiter off).
    """

    conn_name_attr = "maton_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "maton"
    hook_name = "WhatsApp Business (Maton)"

    def __init__(
        self,
        maton_conn_id: str = DEFAULT_CONN_ID,
        *,
        connection_id: str | None = None,
        phone_number_id: str | None = None,
        waba_id: str | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 120.0,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        rate_limit: float | None = None,
        download_timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.maton_conn_id = maton_conn_id
        self.connection_id = connection_id
        self.phone_number_id = phone_number_id
        self.waba_id = waba_id
        self.timeout = timeout
        self.retry_policy = RetryPolicy(
            max_attempts=max_attempts, max_seconds=max_retry_seconds, max_retry_after=max_retry_after
        )
        self.rate_limit = (
            None if rate_limit is None else check_rate_limit(rate_limit, where="the MatonHook arguments")
        )
        self.download_timeout = _seconds(
            "download_timeout",
            max(timeout, MIN_DOWNLOAD_TIMEOUT) if download_timeout is None else download_timeout,
        )
        self._settings: MatonSettings | None = None
        self._client: httpx.Client | None = None
        self._aclients: AsyncClients | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(maton_conn_id={self.maton_conn_id!r})"

    @classmethod
    def from_settings(cls, settings: MatonSettings, **hook_kwargs: Any) -> MatonHook:
        """A hook that sends with ``settings`` resolved by another hook (in a parent process) and reads
        no connection: on Airflow 3 a task's own worker processes cannot. The key is masked here too.

        :param settings: what :attr:`settings` of the resolving hook gave.
        :param hook_kwargs: the other arguments of the hook (``timeout``, ``max_attempts``...).
        """
        hook = cls(**hook_kwargs)
        resolved = hook._finish(settings)
        mask_key(resolved.api_key)
        hook._settings = resolved
        return hook

    # --- settings -------------------------------------------------------------------------------

    @property
    def settings(self) -> MatonSettings:
        """The connection's settings, read once per hook (a new hook reads a changed connection)."""
        if self._settings is None:
            try:
                conn = get_connection(self.maton_conn_id)
            except AirflowNotFoundException:
                settings = self._finish(self._without_connection())
            else:
                settings = self._finish(self._from_connection(conn))
            mask_key(settings.api_key)
            self._settings = settings
        return self._settings

    async def aget_settings(self) -> MatonSettings:
        """:attr:`settings` for async code, reading the connection without blocking the loop."""
        if self._settings is None:
            try:
                conn = await aget_connection(self.maton_conn_id)
            except AirflowNotFoundException:
                settings = self._finish(self._without_connection())
            else:
                settings = self._finish(self._from_connection(conn))
            await amask_key(settings.api_key)
            self._settings = settings
        return self._settings

    def _without_connection(self) -> MatonSettings:
        if self.maton_conn_id != DEFAULT_CONN_ID:
            raise WhatsAppConfigurationError(
                f"The Airflow connection {self.maton_conn_id!r} is not defined: create it (type 'maton', "
                "the Maton API key as password)."
            )
        return settings_from_environment(self.maton_conn_id)

    def _from_connection(self, conn: Any) -> MatonSettings:
        return settings_from_connection(
            api_key=conn.password,
            host=conn.host,
            port=conn.port,
            schema=conn.schema,
            extra=connection_extra(conn),
            conn_id=self.maton_conn_id,
        )

    def _finish(self, settings: MatonSettings) -> MatonSettings:
        # Wherever the key came from (a connection, MATON_API_KEY), server text is scrubbed of it
        # from now on; the callers also register it with Airflow's masker (sync or async).
        keep_secret(settings.api_key)
        # The hook's own arguments are checked like a path's ids, naming the argument.
        ids = {
            "connection_id": self.connection_id,
            "phone_number_id": self.phone_number_id,
            "waba_id": self.waba_id,
        }
        overrides: dict[str, Any] = {k: _paths.check_id(k, v) for k, v in ids.items() if v is not None}
        if self.rate_limit is not None:
            overrides["rate_limit"] = self.rate_limit
        return dataclasses.replace(settings, **overrides)

    # --- transport ------------------------------------------------------------------------------

    def get_conn(self) -> httpx.Client:
        """The hook's keep-alive HTTP client (created on first use)."""
        if self._client is None:
            self._client = httpx.Client(
                timeout=self._timeout(), headers=_DEFAULT_HEADERS, verify=trust_context()
            )
            with_deadlines(self._client)
        return self._client

    def get_async_conn(self) -> httpx.AsyncClient:
        """The hook's async HTTP client for the running event loop (the first of its clients)."""
        return self._async_clients().first

    def _async_clients(self) -> AsyncClients:
        """The async clients for the running event loop: as many small pools as the requests in flight
        need (see :mod:`._client_pool`), sharing the process's TLS context.
        """
        loop = asyncio.get_running_loop()
        if self._aclients is None or self._aclient_loop is not loop:
            timeout = self._timeout()

            def make(connections: int) -> httpx.AsyncClient:
                limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
                client = httpx.AsyncClient(
                    timeout=timeout, headers=_DEFAULT_HEADERS, limits=limits, verify=trust_context()
                )
                with_deadlines(client)
                return client

            self._aclients = AsyncClients(make)
            self._aclient_loop = loop
        return self._aclients

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(10.0, self.timeout))

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client's connections."""
        if self._aclients is not None:
            clients, self._aclients = self._aclients, None
            await clients.aclose()

    def __enter__(self) -> MatonHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, request: ApiRequest) -> Any:
        s = self.settings
        limiter = limiter_for(s.base_url, s.api_key, s.rate_limit)
        return send_sync(self.get_conn(), request, self.retry_policy, limiter, timeout=self.timeout)

    async def _acall(self, request: ApiRequest) -> Any:
        s = await self.aget_settings()
        limiter = limiter_for(s.base_url, s.api_key, s.rate_limit)
        return await send_async(
            self._async_clients(), request, self.retry_policy, limiter, timeout=self.timeout
        )

    @staticmethod
    def _graph(
        s: MatonSettings,
        method: str,
        segments: tuple[str, ...],
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        body: Any = None,
        idempotent: bool | None = None,
    ) -> ApiRequest:
        if json is not None:
            body = {"json": json}
        return ApiRequest(
            method=method.upper(),
            url=_paths.graph_url(s.base_url, s.app, s.api_version, segments),
            headers=s.headers(),
            params=params,
            body=body,
            idempotent=method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent,
        )

    # --- generic --------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        graph_path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Call any Graph endpoint, e.g. ``request("GET", "123/phone_numbers")``; returns the JSON body.

        :param graph_path: ids and edge names separated by ``/``; each segment is checked (letters,
            digits, ``_``, ``-``, ``.``; no empty or dot-only segment) before any request.
        :param params: query values (encoded by the client, never part of ``graph_path``).
        :param idempotent: whether repeating the request after an ambiguous failure is harmless
            (default: true for GET, PUT, DELETE; false for POST).
        """
        segments = _paths.split_graph_path(graph_path)
        return self._call(
            self._graph(self.settings, method, segments, params=params, json=json, idempotent=idempotent)
        )

    async def arequest(
        self,
        method: str,
        graph_path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Async :meth:`request`."""
        segments = _paths.split_graph_path(graph_path)
        s = await self.aget_settings()
        return await self._acall(
            self._graph(s, method, segments, params=params, json=json, idempotent=idempotent)
        )

    # --- messages -------------------------------------------------------------------------------

    @staticmethod
    def _message_request(
        s: MatonSettings, payload: dict[str, Any], phone_number_id: str | None
    ) -> ApiRequest:
        path = _paths.messages(s.require_phone_number_id(phone_number_id))
        return MatonHook._graph(s, "POST", path, json=whatsapp_body(payload))

    def send_message(self, payload: dict[str, Any], *, phone_number_id: str | None = None) -> dict[str, Any]:
        """Send one message payload (``to``, ``type`` and the type's object); returns Graph's answer.

        A send that may have reached WhatsApp is never repeated: see :mod:`~airflow_provider_whatsapp.errors`.
        An answer without a message id (not JSON, ``{"success": true}``, an HTML page...) raises
        :class:`~airflow_provider_whatsapp.errors.WhatsAppDeliveryUnknownError`, not a retryable error.
        """
        answer = self._call(self._message_request(self.settings, payload, phone_number_id))
        self.message_id(answer)
        return answer

    async def asend_message(
        self, payload: dict[str, Any], *, phone_number_id: str | None = None
    ) -> dict[str, Any]:
        """Async :meth:`send_message`."""
        s = await self.aget_settings()
        answer = await self._acall(self._message_request(s, payload, phone_number_id))
        self.message_id(answer)
        return answer

    @staticmethod
    def message_id(response: Any) -> str:
        """The ``wamid`` of a message from :meth:`send_message`'s answer.

        Anything else than a non-empty ``messages[0].id`` string means the send's outcome is unknown.
        """
        try:
            wamid = response["messages"][0]["id"]
        except (KeyError, IndexError, TypeError):
            wamid = None
        if not isinstance(wamid, str) or not wamid.strip():
            raise WhatsAppDeliveryUnknownError(
                f"The send was answered without a message id ({shape(response)}). {MAY_HAVE_BEEN_DELIVERED}"
            )
        return wamid

    def mark_as_read(self, message_id: str, *, phone_number_id: str | None = None) -> dict[str, Any]:
        """Mark a received message as read (blue ticks for the sender)."""
        from airflow_provider_whatsapp.messages import MarkAsRead  # the model builds (and checks) the body

        s = self.settings
        body = whatsapp_body(MarkAsRead.build(message_id=message_id).to_payload())
        path = _paths.messages(s.require_phone_number_id(phone_number_id))
        return self._call(self._graph(s, "POST", path, json=body, idempotent=True))

    # --- phone numbers and business profile -----------------------------------------------------

    def get_phone_number(self, phone_number_id: str | None = None) -> dict[str, Any]:
        """A business phone number: display number, verified name, quality rating, throughput."""
        s = self.settings
        path = _paths.phone_number(s.require_phone_number_id(phone_number_id))
        return self._call(self._graph(s, "GET", path))

    def list_phone_numbers(self, waba_id: str | None = None) -> list[dict[str, Any]]:
        """The phone numbers of a WhatsApp Business Account."""
        s = self.settings
        answer = self._call(self._graph(s, "GET", _paths.phone_numbers(s.require_waba_id(waba_id))))
        return answer_part(answer, "data", list, "the list of phone numbers", default=[], items=dict)

    def get_business_profile(self, phone_number_id: str | None = None) -> dict[str, Any]:
        """The business profile shown to customers (about, address, description, email, websites...)."""
        s = self.settings
        path = _paths.business_profile(s.require_phone_number_id(phone_number_id))
        answer = self._call(self._graph(s, "GET", path, params={"fields": _PROFILE_FIELDS}))
        data = answer_part(answer, "data", list, "the business profile", default=[], items=dict)
        return dict(data[0]) if data else {}

    def update_business_profile(self, *, phone_number_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """Update business profile fields, e.g. ``about="Daily reports"``."""
        if not fields:
            raise WhatsAppValidationError("update_business_profile needs at least one field to change.")
        s = self.settings
        path = _paths.business_profile(s.require_phone_number_id(phone_number_id))
        return self._call(self._graph(s, "POST", path, json=whatsapp_body(fields), idempotent=True))

    # --- media ----------------------------------------------------------------------------------

    def upload_media(
        self,
        source: str | os.PathLike[str] | ObjectStoragePath,
        *,
        mime_type: str | None = None,
        media_type: str | None = None,
        phone_number_id: str | None = None,
    ) -> str:
        """Upload a file (local path or object-storage URL) as WhatsApp media and return its id.

        The file is streamed, never read whole into memory. Its MIME type is guessed from the name when
        not given, and type and size are checked against WhatsApp's limits before a byte is sent.

        :param source: a local path, an ``ObjectStoragePath`` or a URL such as ``s3://bucket/report.pdf``.
        :param mime_type: e.g. ``application/pdf``; guessed from the file name when not given.
        :param media_type: ``image``, ``video``, ``audio``, ``document`` or ``sticker``; guessed from the
            MIME type when not given (anything not an image, video, audio or sticker is a document).
        :param phone_number_id: the business phone number the media is for; defaults to the connection's.
        """
        s = self.settings
        with open_media(source, mime_type, media_type) as (handle, name, mime):
            request = self._upload_request(s, handle, name, mime, phone_number_id)
            return self._media_id(self._call(request))

    async def aupload_media(
        self,
        source: str | os.PathLike[str] | ObjectStoragePath,
        *,
        mime_type: str | None = None,
        media_type: str | None = None,
        phone_number_id: str | None = None,
    ) -> str:
        """Async :meth:`upload_media`."""
        s = await self.aget_settings()
        with open_media(source, mime_type, media_type) as (handle, name, mime):
            request = self._upload_request(s, handle, name, mime, phone_number_id)
            return self._media_id(await self._acall(request))

    @staticmethod
    def _upload_request(
        s: MatonSettings, handle: IO[bytes], name: str, mime: str, phone_number_id: str | None
    ) -> ApiRequest:
        def body() -> dict[str, Any]:
            # Called again for every attempt: the stream starts over from the file's first byte.
            handle.seek(0)
            return {
                "files": {"file": (name, handle, mime)},
                "data": whatsapp_body({"type": mime}),
            }

        path = _paths.media_upload(s.require_phone_number_id(phone_number_id))
        # Repeating an upload is harmless (at worst an unused media object expires after 30 days), so
        # ambiguous failures are retried like reads instead of being reported as "may have been sent".
        return MatonHook._graph(s, "POST", path, body=body, idempotent=True)

    @staticmethod
    def _media_id(answer: Any) -> str:
        media_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(media_id, (str, int)) or isinstance(media_id, bool) or not str(media_id).strip():
            # Uploading again is harmless (see _upload_request), so a later try may.
            raise WhatsAppTransientError(f"The upload was answered without a media id ({shape(answer)}).")
        return str(media_id)

    def get_media(self, media_id: str) -> dict[str, Any]:
        """A media object's ``url`` (valid for a few minutes), ``mime_type``, ``sha256`` and ``file_size``."""
        return _media_info(self._call(self._graph(self.settings, "GET", _paths.media(media_id))))

    async def aget_media(self, media_id: str) -> dict[str, Any]:
        """Async :meth:`get_media`."""
        path = _paths.media(media_id)
        s = await self.aget_settings()
        return _media_info(await self._acall(self._graph(s, "GET", path)))

    @staticmethod
    def _delete_media_request(s: MatonSettings, media_id: str, phone_number_id: str | None) -> ApiRequest:
        path = _paths.media(media_id)
        owner = s.phone_number_id if phone_number_id is None else phone_number_id
        params = (
            None if owner is None else {"phone_number_id": _paths.check_graph_id("phone_number_id", owner)}
        )
        return MatonHook._graph(s, "DELETE", path, params=params)

    def delete_media(self, media_id: str, *, phone_number_id: str | None = None) -> bool:
        """Delete uploaded media; returns Graph's ``success``."""
        s = self.settings
        return bool(self._call(self._delete_media_request(s, media_id, phone_number_id)).get("success"))

    async def adelete_media(self, media_id: str, *, phone_number_id: str | None = None) -> bool:
        """Async :meth:`delete_media`."""
        s = await self.aget_settings()
        answer = await self._acall(self._delete_media_request(s, media_id, phone_number_id))
        return bool(answer.get("success"))

    def download_media(self, media_id: str, destination: str | os.PathLike[str] | ObjectStoragePath) -> str:
        """Stream a media object to a local path or object-storage URL; returns the destination.

        The bearer key goes with the download when the URL is on the gateway (or, for Graph direct, on
        Meta's media hosts), never to another host. The content is checked against the ``sha256``
        WhatsApp reports; a download that fails or does not match is removed, not left half-written.
        """
        check_destination(destination)
        s = self.settings
        info = self.get_media(media_id)
        url = info["url"]
        headers = s.headers() if may_send_key(s, url) else {}
        request = ApiRequest(method="GET", url=url, headers=headers, idempotent=True)
        digest = hashlib.sha256()
        size = 0
        response = None
        unwritable: WhatsAppError | None = None
        try:
            # One budget for the whole file: per-read timeouts alone let a trickling host hold it forever.
            with (
                deadline(time.monotonic() + self.download_timeout),
                self.get_conn().stream("GET", url, headers=request.headers) as response,
            ):
                if not response.is_success:
                    reader = BodyReader(response, API_ANSWER_MAX_BYTES)
                    interpret(request, response, b"".join(reader.feed(raw) for raw in response.iter_raw()))
                reader = BodyReader(response, _media_size_limit(info))
                with open_destination(destination) as out:
                    for raw in response.iter_raw(_DOWNLOAD_CHUNK):
                        chunk = reader.feed(raw)
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        except Exception as exc:
            error = failure(request, response, exc)
            if error is exc:
                raise
            if not quotes_request(exc):
                raise error from exc
            unwritable = error
        if unwritable is not None:
            # Raised outside the handler: the cause would quote the request's headers, the key among them.
            raise_without_cause(unwritable)
        expected = info.get("sha256")
        if expected and str(expected).lower() != digest.hexdigest():
            remove_file(destination)
            raise WhatsAppError(
                f"Media {media_id} downloaded with sha256 {digest.hexdigest()}, expected {expected}; "
                "the file was removed."
            )
        self.log.info("Downloaded media %s (%d bytes) to %s", media_id, size, destination)
        return str(destination)

    # --- templates ------------------------------------------------------------------------------

    @staticmethod
    def _templates_request(
        s: MatonSettings, waba_id: str | None, filters: dict[str, Any], after: str | None
    ) -> ApiRequest:
        params = {k: v for k, v in filters.items() if v is not None}
        if after:
            params["after"] = after
        return MatonHook._graph(s, "GET", _paths.message_templates(s.require_waba_id(waba_id)), params=params)

    @staticmethod
    def _template_filters(
        name: str | None, status: str | None, language: str | None, limit: int
    ) -> dict[str, Any]:
        return {"name": name, "status": status, "language": language, "limit": limit}

    @staticmethod
    def _keep(
        templates: list[dict[str, Any]], name: str | None, status: str | None, language: str | None
    ) -> list[dict[str, Any]]:
        # Graph matches ``name`` as a substring; callers asking for a name mean that exact name.
        return [
            t
            for t in templates
            if (name is None or t.get("name") == name)
            and (status is None or t.get("status") == status)
            and (language is None or t.get("language") == language)
        ]

    def list_templates(
        self,
        *,
        waba_id: str | None = None,
        name: str | None = None,
        status: str | None = None,
        language: str | None = None,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Every message template of the account, following the pages, optionally filtered.

        A page is followed only while the answer has ``paging.next`` (cursors alone are always there).

        :param name: exact template name. :param status: e.g. ``APPROVED``. :param language: e.g. ``en_US``.
        """
        s = self.settings
        filters = self._template_filters(name, status, language, page_size)
        pages = TemplatePages()
        while pages.after is not _LAST_PAGE:
            pages.add(self._call(self._templates_request(s, waba_id, filters, pages.after)))
        return self._keep(pages.found, name, status, language)

    async def alist_templates(
        self,
        *,
        waba_id: str | None = None,
        name: str | None = None,
        status: str | None = None,
        language: str | None = None,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Async :meth:`list_templates`."""
        s = await self.aget_settings()
        filters = self._template_filters(name, status, language, page_size)
        pages = TemplatePages()
        while pages.after is not _LAST_PAGE:
            pages.add(await self._acall(self._templates_request(s, waba_id, filters, pages.after)))
        return self._keep(pages.found, name, status, language)

    def create_template(
        self,
        *,
        name: str,
        language: str,
        category: str,
        components: list[dict[str, Any]],
        waba_id: str | None = None,
        allow_category_change: bool | None = None,
    ) -> dict[str, Any]:
        """Submit a message template for review; returns ``{"id", "status", "category"}``.

        The definition is checked first (name, category, components, placeholders and their examples);
        a :class:`~airflow_provider_whatsapp.errors.WhatsAppValidationError` names the part that is wrong.
        """
        validate_template(name=name, language=language, category=category, components=components)
        s = self.settings
        body: dict[str, Any] = {
            "name": name,
            "language": language,
            "category": category,
            "components": components,
        }
        if allow_category_change is not None:
            body["allow_category_change"] = allow_category_change
        path = _paths.message_templates(s.require_waba_id(waba_id))
        return self._call(self._graph(s, "POST", path, json=body))

    def delete_template(
        self, name: str, *, template_id: str | None = None, waba_id: str | None = None
    ) -> bool:
        """Delete a template by name (every language), or only the one with ``template_id``.

        An empty ``template_id`` is refused rather than read as "every language".
        """
        s = self.settings
        params = {"name": name}
        if template_id is not None:
            params["hsm_id"] = _paths.check_graph_id("template_id", template_id)
        path = _paths.message_templates(s.require_waba_id(waba_id))
        return bool(self._call(self._graph(s, "DELETE", path, params=params)).get("success", False))

    # --- webhook subscription -------------------------------------------------------------------

    def subscribe_webhooks(
        self, callback_url: str, verify_token: str, *, waba_id: str | None = None
    ) -> dict[str, Any]:
        """Send the account's webhooks to ``callback_url`` (Meta's per-account callback override, which
        also works through Maton). Meta first calls the URL with ``verify_token`` and a challenge the
        receiver must echo; the subscription is refused otherwise. Returns Graph's answer.

        :param callback_url: https (http only on this machine, for the sandbox); checked before any request.
        :param verify_token: the token the receiver expects; masked in logs, never shown in an error.
        :param waba_id: the WhatsApp Business Account; default the connection's ``waba_id``.
        """
        url = _paths.check_callback_url(callback_url)
        token = _paths.check_verify_token(verify_token)
        mask_key(token)
        keep_secret(token)
        s = self.settings
        body = {SUBSCRIPTION_CALLBACK_FIELD: url, SUBSCRIPTION_VERIFY_TOKEN_FIELD: token}
        path = _paths.subscribed_apps(s.require_waba_id(waba_id))
        # Subscribing the same URL again changes nothing: safe to repeat after an ambiguous failure.
        return self._call(self._graph(s, "POST", path, json=body, idempotent=True))

    def get_webhook_subscription(self, *, waba_id: str | None = None) -> dict[str, Any]:
        """The account's webhook subscription: ``subscribed`` (whether any app is), ``callback_url``
        (the override in force, or ``None``) and ``apps`` (Graph's list, as it answered)."""
        s = self.settings
        answer = self._call(self._graph(s, "GET", _paths.subscribed_apps(s.require_waba_id(waba_id))))
        apps = answer_part(answer, "data", list, "the subscribed apps", default=[], items=dict)
        callback = next(
            (
                a[SUBSCRIPTION_CALLBACK_FIELD]
                for a in apps
                if isinstance(a.get(SUBSCRIPTION_CALLBACK_FIELD), str)
            ),
            None,
        )
        return {"subscribed": bool(apps), "callback_url": callback, "apps": apps}

    # --- Maton control plane (see :mod:`._control_plane`) -----------------------------------------

    def list_maton_connections(
        self, *, app: str | None = None, status: str | None = "ACTIVE"
    ) -> list[dict[str, Any]]:
        """Maton connections for the app (default ``whatsapp-business``), filtered by status."""
        return _control_plane.list_connections(self._call, self.settings, app=app, status=status)

    def get_maton_connection(self, connection_id: str) -> dict[str, Any]:
        """One Maton connection: id, status, app, creation time."""
        return _control_plane.get_connection(self._call, self.settings, connection_id)

    def create_maton_connection(self, *, app: str | None = None) -> dict[str, Any]:
        """Start a new Maton connection; open its ``url`` in a browser to grant WhatsApp access."""
        return _control_plane.create_connection(self._call, self.settings, app=app)

    def delete_maton_connection(self, connection_id: str) -> None:
        """Delete a Maton connection (WhatsApp access through it stops)."""
        _control_plane.delete_connection(self._call, self.settings, connection_id)

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and say which WhatsApp connections are active (used by the Airflow UI)."""
        return _control_plane.test_connection(self)

    # --- Airflow UI (Airflow 2; Airflow 3 reads conn-fields from provider info) --------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the Airflow 2 connection form (Airflow 3 reads them from provider info)."""
        from airflow_provider_whatsapp.hooks._connection_form import airflow2_widgets

        return airflow2_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the standard connection fields."""
        behaviour = CONNECTION_UI["ui-field-behaviour"]
        return {key.replace("-", "_"): value for key, value in behaviour.items()}


def whatsapp_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` as the body of a WhatsApp request: the one place ``messaging_product`` is added.

    The hook's value wins over one in ``fields``: WhatsApp takes no other.
    """
    return {
        "messaging_product": MESSAGING_PRODUCT,
        **{k: v for k, v in fields.items() if k != "messaging_product"},
    }


def _seconds(name: str, value: Any) -> float:
    """A duration argument: a positive, finite number of seconds, else an error naming it."""
    number = finite_number(value) if not isinstance(value, str) else None
    if number is None or number <= 0:
        raise WhatsAppConfigurationError(f"{name} must be a positive, finite number of seconds.")
    return number


def _media_size_limit(info: dict[str, Any]) -> int:
    """The most a media download may bring: the size WhatsApp reported, within its largest media limit."""
    reported = info.get("file_size")
    size = 0
    if isinstance(reported, int) and not isinstance(reported, bool):
        size = reported
    elif isinstance(reported, str) and reported.isdigit() and len(reported) < 20:
        size = int(reported)
    return size if 0 < size <= MEDIA_MAX_BYTES else MEDIA_MAX_BYTES


_LAST_PAGE = ""


class TemplatePages:
    """The templates gathered page by page, and the cursor of the next page (``_LAST_PAGE`` when done).

    A page is followed only while the answer has ``paging.next`` (cursors alone are always there); a
    server that keeps pointing further, or back to a page already read, cannot keep the listing going.
    """

    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []
        self.after: str | None = None  # None: the first page
        self._seen: set[str] = set()
        self._pages = 0

    def add(self, page: Any) -> None:
        self._pages += 1
        self.found.extend(answer_part(page, "data", list, "a page of templates", default=[], items=dict))
        paging = answer_part(page, "paging", dict, "the paging of a template page", default={})
        if not paging.get("next"):
            self.after = _LAST_PAGE
            return
        cursors = answer_part(paging, "cursors", dict, "the cursors of a template page", default={})
        after = answer_part(cursors, "after", str, "the next page's cursor", default=_LAST_PAGE)
        if after in self._seen:
            raise WhatsAppTransientError(
                f"Listing templates: page {self._pages} points back to a page already read; stopped."
            )
        if after and self._pages >= MAX_TEMPLATE_PAGES:
            raise WhatsAppTransientError(
                f"Listing templates: still more pages after {MAX_TEMPLATE_PAGES}; stopped. Filter by name or "
                "status, or raise page_size."
            )
        self._seen.add(after)
        self.after = after


def _media_info(answer: Any) -> dict[str, Any]:
    """A media object's answer, with the download ``url`` it must have."""
    url = answer_part(answer, "url", str, "the media's download URL")
    if not url.strip():
        raise WhatsAppTransientError("The answer's 'url' (the media's download URL) is empty.")
    return dict(answer)
