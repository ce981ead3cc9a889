"""What remote providers share: mapping HTTP outcomes onto the exception tree, streaming files.

The rule that protects the bill: a submit is retried only when it surely did not reach the
provider (the connection never opened) or the provider said so (429/503). Anything else that
fails after the request left us may have been accepted, so it is ``reached=True``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

from services.downloads import CHUNK, stream_to_file
from services.errors import ProviderPermanent, ProviderTransient, TransferError

CONTENT_POLICY_WORDS = (
    "content policy",
    "content_policy",
    "nsfw",
    "safety",
    "moderation",
    "inappropriate",
    "sensitive content",
)
NOT_ACCEPTED = frozenset({429, 503})  # the provider refused before taking the job
# fal answers 403 "User is locked. Reason: Exhausted balance…" (or "Reason: TOP_UP") when the
# account has run out of money, on submits and storage uploads alike (fal-ai/fal issues #1112,
# #1147, #1163): that wants a top-up, not a new key.
OUT_OF_CREDIT_WORDS = ("exhausted balance", "reason: top_up", "insufficient balance")


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta or HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def detail(response: httpx.Response, limit: int = 300) -> str:
    """The provider's own words about an error, short."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:limit].strip() or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for key in ("detail", "error", "message", "msg"):
            if body.get(key):
                body = body[key]
                break
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        where = ".".join(str(p) for p in first.get("loc", []))
        body = f"{where}: {first.get('msg', '')}".strip(": ")
    if isinstance(body, dict):
        body = body.get("message") or str(body)
    return str(body)[:limit]


def is_validation_error(response: httpx.Response) -> bool:
    """Whether an answer is a FastAPI/pydantic validation list (``detail: [{loc, msg}]``)."""
    try:
        body: Any = response.json()
    except ValueError:
        return False
    errors = body.get("detail") if isinstance(body, dict) else None
    return isinstance(errors, list) and all(isinstance(e, dict) and "loc" in e for e in errors)


def is_out_of_credit(text: str) -> bool:
    """Whether an error text says the provider account has no money left."""
    lowered = text.lower()
    return any(word in lowered for word in OUT_OF_CREDIT_WORDS)


def is_content_policy(text: str) -> bool:
    """Whether an error text says the request broke the provider's content rules."""
    lowered = text.lower()
    return any(word in lowered for word in CONTENT_POLICY_WORDS)


def raise_for(response: httpx.Response, *, what: str) -> None:
    """Raise the domain error for a non-2xx answer (``what`` names the call, for logs)."""
    status = response.status_code
    if status < 400:
        return
    text = detail(response)
    message = f"{what}: HTTP {status}: {text}"
    if status in NOT_ACCEPTED:
        raise ProviderTransient(message, retry_after=retry_after(response), reached=False)
    if status >= 500 or status == 408:
        raise ProviderTransient(message, retry_after=retry_after(response), reached=True)
    if status == 402 or (status == 403 and is_out_of_credit(text)):
        raise ProviderPermanent(message, reason="out_of_credit")
    if status in (401, 403):
        raise ProviderPermanent(message, reason="auth")
    if status == 422 and (is_validation_error(response) or not is_content_policy(text)):
        # The model refused the input (a schema field named "safety_…" is no content-policy
        # refusal): another model may take the same job. Some providers still bill a 422; the
        # user is refunded either way.
        raise ProviderPermanent(message, reason="invalid_input", billed=True)
    if is_content_policy(text):
        raise ProviderPermanent(message, reason="content_policy", billed=status == 422)
    if status == 404:
        raise ProviderPermanent(message, reason="not_found")
    raise ProviderPermanent(message, reason="rejected")


def transport_error(exc: httpx.HTTPError, *, what: str) -> ProviderTransient:
    """A request that failed on the wire; ``reached`` unless it never left."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    # The type only: an httpx message can carry the URL.
    return ProviderTransient(f"{what}: {type(exc).__name__}", reached=not never_sent)


def json_of(response: httpx.Response, *, what: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer; malformed JSON is a transient fault."""
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderTransient(f"{what}: malformed JSON", reached=True) from exc
    if not isinstance(body, dict):
        raise ProviderTransient(f"{what}: unexpected JSON", reached=True)
    return body


def same_origin(url: str, root: str) -> bool:
    """Whether ``url`` is on the host of ``root``: keys are only ever sent there."""
    a, b = urlsplit(url), urlsplit(root)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """A file's bytes in chunks, for streamed uploads."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


async def fetch_output(client: httpx.AsyncClient, url: str, dest: Path, max_bytes: int) -> None:
    """Download a provider output (no credentials sent); map failures onto the tree."""
    if not url.startswith(("http://", "https://")):
        raise ProviderPermanent("output is not an http(s) URL")
    partial = dest.with_name(dest.name + ".part")
    try:
        await stream_to_file(client, url, partial, max_bytes)
        partial.replace(dest)
    except TransferError as exc:
        if exc.kind == "too_large" or exc.status in (401, 403, 404, 410):
            # An expired or missing output does not come back by asking again.
            raise ProviderPermanent(f"output download: {exc}", reason="expired") from exc
        raise ProviderTransient(f"output download: {exc}", reached=True) from exc
    finally:
        partial.unlink(missing_ok=True)


class StatusClient:
    """The GET requests of status polls, over aiohttp: a worker sends them by the hundred a
    second, and they are most of its work.

    Through httpx the same request cost about 1.3 ms of CPU on a 2-core machine (pool
    bookkeeping, anyio and h11, all in Python; a pool of dozens of connections much more)
    against about 0.3 ms here: the difference between one worker polling 10,000 jobs within
    the poll interval or not. Answers come back as httpx Responses, so they are judged by
    ``raise_for`` like every other call. Redirects are not followed: the key in the headers
    never goes on to another address.
    """

    def __init__(self, connections: int, *, timeout: float, connect: float = 10.0) -> None:
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop; the same trust store as httpx.
        connector = aiohttp.TCPConnector(
            limit=self._connections, ssl=httpx.create_ssl_context(), keepalive_timeout=30.0
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
        )
        return self._session

    async def get(
        self,
        url: str,
        *,
        headers: dict[str, str],
        what: str,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The answer to a GET, whatever its status; a failure on the wire is transient."""
        session = self._session or self._open()
        try:
            async with session.get(
                url, headers=headers, params=params, allow_redirects=False
            ) as reply:
                body = await reply.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            never_sent = isinstance(
                exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
            )
            # The type only: aiohttp's messages can carry the URL.
            raise ProviderTransient(
                f"{what}: {type(exc).__name__}", reached=not never_sent
            ) from exc
        if 300 <= reply.status < 400:
            raise ProviderTransient(f"{what}: HTTP {reply.status}, a redirect", reached=True)
        return httpx.Response(reply.status, headers=list(reply.headers.items()), content=body)

    async def aclose(self) -> None:
        """Close the connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
