"""Provider callbacks: a provider says a job is done, and the job is polled at once.

A callback never changes a job by itself: it only makes the job due now, and the poll that
follows asks the provider, with the key, what really happened. So a forged, late, repeated or
wrong callback can at most cause one extra poll. Every callback URL carries the job's own secret;
fal's are also signed (ED25519 over the request id, user id, timestamp and the body's SHA-256,
with fal's public keys from its JWKS), and checked before the body is read.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.model.jobs import JobState
from services.storage.repositories import Clock, JobRepository

log = logging.getLogger(__name__)

JWKS_MEMORY = 24 * 3_600.0  # fal's keys are cached a day at most
MAX_SKEW = 300.0  # a signature older or newer than this is refused
CALLBACK_SECRET = "callback"  # noqa: S105 - the key under which a job keeps its secret


def new_secret() -> str:
    """A job's callback secret: unguessable, and safe in a URL path."""
    return secrets.token_urlsafe(18)


def callback_url(public_url: str, provider: str, job_id: int, secret: str) -> str:
    """Where ``provider`` reports on job ``job_id``."""
    return f"{public_url.rstrip('/')}/callbacks/{provider}/{job_id}/{secret}"


@dataclass(frozen=True)
class Verdict:
    """What became of a callback: the HTTP status to answer, and why (for the metrics)."""

    status: int
    outcome: str  # "accepted", "ignored" (known but nothing to do), or why it was refused


class FalSignatures:
    """Checks fal's webhook signatures against the keys of fal's JWKS."""

    def __init__(self, http: httpx.AsyncClient, jwks_url: str, clock: Clock = time.time) -> None:
        self.http = http
        self.jwks_url = jwks_url
        self.clock = clock
        self._keys: list[Ed25519PublicKey] = []
        self._fetched = float("-inf")
        self._lock = asyncio.Lock()

    async def keys(self, refresh: bool = False) -> list[Ed25519PublicKey]:
        async with self._lock:
            if refresh or self.clock() - self._fetched > JWKS_MEMORY or not self._keys:
                response = await self.http.get(self.jwks_url, timeout=10.0)
                response.raise_for_status()
                keys = []
                for jwk in response.json().get("keys", []):
                    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("x"):
                        raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
                        keys.append(Ed25519PublicKey.from_public_bytes(raw))
                self._keys, self._fetched = keys, self.clock()
            return self._keys

    async def valid(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the headers sign this body, recently, with one of fal's keys."""
        request_id = headers.get("x-fal-webhook-request-id", "")
        user_id = headers.get("x-fal-webhook-user-id", "")
        stamp = headers.get("x-fal-webhook-timestamp", "")
        signature = headers.get("x-fal-webhook-signature", "")
        if not (request_id and user_id and stamp.isdigit() and signature):
            return False
        if abs(self.clock() - int(stamp)) > MAX_SKEW:
            return False
        try:
            raw_signature = bytes.fromhex(signature)
        except ValueError:
            return False
        digest = hashlib.sha256(body).hexdigest()
        message = f"{request_id}\n{user_id}\n{stamp}\n{digest}".encode()
        for refresh in (False, True):  # a key fal rotated in since the last fetch: once more
            try:
                keys = await self.keys(refresh)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("fal webhook keys unavailable: %s", type(exc).__name__)
                return False
            for key in keys:
                try:
                    key.verify(raw_signature, message)
                    return True
                except InvalidSignature:
                    continue
        return False


class Callbacks:
    """Receives provider callbacks and wakes the jobs they are about."""

    def __init__(self, jobs: JobRepository, fal: FalSignatures | None) -> None:
        self.jobs = jobs
        self.fal = fal
        # In a process that also polls: poll the job right here, with no round trip through
        # the queue (elsewhere the job is woken for a worker).
        self.take: Callable[[int], Awaitable[None]] | None = None

    async def receive(
        self, provider: str, job_id: str, secret: str, headers: Mapping[str, str], body: bytes
    ) -> Verdict:
        """Check a callback and, if it is one, make its job due now."""
        job = await self.jobs.get(int(job_id)) if job_id.isdigit() and len(job_id) < 13 else None
        expected = str(job.provider_data.get(CALLBACK_SECRET, "")) if job is not None else ""
        if (
            job is None
            or job.provider != provider
            or not expected
            or not hmac.compare_digest(secret.encode(), expected.encode())
        ):
            return Verdict(403, "secret")
        if provider == "fal":
            if self.fal is None or not await self.fal.valid(headers, body):
                return Verdict(401, "signature")
            if headers.get("x-fal-webhook-request-id") != job.external_id:
                return Verdict(403, "other_request")
        else:
            try:
                about = json.loads(body).get("id")
            except (ValueError, AttributeError):
                about = None
            if about != job.external_id:
                return Verdict(400, "other_request")
        if job.state != JobState.RUNNING:
            return Verdict(200, "ignored")  # late or repeated: the job moved on already
        if self.take is not None:
            await self.take(job.id)
        else:
            await self.jobs.wake(job.id)
        log.info("job %s: %s called back; polling it now", job.id, provider)
        return Verdict(200, "accepted")
