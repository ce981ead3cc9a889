"""muapi.ai: one key for Kling, Seedance, Wan, Veo, Hailuo, PixVerse and MMAudio.

Contract (providers.md §1): ``x-api-key`` on every call; upload with ``POST /api/v1/upload_file``
(multipart field ``file``) or, above the direct upload's cap, the presigned flow; submit with
``POST /api/v1/{endpoint}``; poll ``GET /api/v1/predictions/{id}/result``.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import httpx

from services.errors import ProviderPermanent, ProviderTransient
from services.providers import http as web
from services.providers.base import JobSpec, ProviderState, ProviderStatus, Submission
from services.providers.payloads import build_payload, swapped_field

log = logging.getLogger(__name__)

IMAGE_UPLOAD_CAP = 10_000_000
VIDEO_UPLOAD_CAP = 50_000_000
STATES = {
    "queued": ProviderState.QUEUED,
    "pending": ProviderState.QUEUED,
    "starting": ProviderState.QUEUED,
    "processing": ProviderState.RUNNING,
    "running": ProviderState.RUNNING,
    "in_progress": ProviderState.RUNNING,
    "completed": ProviderState.COMPLETED,
    "succeeded": ProviderState.COMPLETED,
    "success": ProviderState.COMPLETED,
    "failed": ProviderState.FAILED,
    "error": ProviderState.FAILED,
    "cancelled": ProviderState.CANCELED,
    "canceled": ProviderState.CANCELED,
}


def output_urls(outputs: Any) -> tuple[str, ...]:
    """Outputs as URL strings, or objects carrying ``url``/``video_url``/``audio_url``."""
    if isinstance(outputs, str):
        outputs = [outputs]
    urls: list[str] = []
    for item in outputs or []:
        if isinstance(item, str):
            urls.append(item)
        elif isinstance(item, dict):
            url = item.get("url") or item.get("video_url") or item.get("audio_url")
            if isinstance(url, str):
                urls.append(url)
    return tuple(urls)


def fraction(value: Any) -> float | None:
    """A progress value as 0..1, whether it came as a fraction or a percentage."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return min(1.0, max(0.0, value / 100 if value > 1 else float(value)))


def error_text(value: Any) -> str:
    """``error`` as a string, whether it came as text or as ``{message}``."""
    if isinstance(value, dict):
        return str(value.get("message") or value.get("detail") or value)
    return str(value or "")


class MuapiProvider:
    """The muapi.ai HTTP API."""

    name = "muapi"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        timeout: float = 60.0,
        statuses: web.StatusClient | None = None,
    ) -> None:
        self.client = client
        self.statuses = statuses  # status polls, when given (they come by the hundred)
        self.timeout = httpx.Timeout(timeout, connect=10.0)
        self.api = f"{base_url.rstrip('/')}/api/v1"
        self._headers = {"x-api-key": api_key}

    async def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.client.request(
                method, f"{self.api}/{path}", headers=self._headers, timeout=self.timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise web.transport_error(exc, what=what) from exc
        web.raise_for(response, what=what)
        return response

    async def _status(self, path: str, *, what: str) -> httpx.Response:
        if self.statuses is None:
            return await self._request("GET", path, what=what)
        response = await self.statuses.get(f"{self.api}/{path}", headers=self._headers, what=what)
        web.raise_for(response, what=what)
        return response

    async def upload(self, path: Path, content_type: str) -> str:
        """Upload the user's bytes (never a Telegram URL) and return muapi's URL for them."""
        size = path.stat().st_size
        cap = IMAGE_UPLOAD_CAP if content_type.startswith("image/") else VIDEO_UPLOAD_CAP
        name = f"input{path.suffix.lower()}"
        if size > cap:
            return await self._upload_presigned(path, name, content_type)
        with path.open("rb") as handle:
            response = await self._request(
                "POST", "upload_file", what="upload", files={"file": (name, handle, content_type)}
            )
        body = web.json_of(response, what="upload")
        url = body.get("url") or body.get("file_url") or (body.get("data") or {}).get("url")
        if not isinstance(url, str):
            raise ProviderPermanent("upload: no URL in the answer")
        return url

    async def _upload_presigned(self, path: Path, name: str, content_type: str) -> str:
        response = await self._request(
            "GET", "get_upload_url", what="upload", params={"filename": name}
        )
        body = web.json_of(response, what="upload")
        url, fields = body.get("url"), body.get("fields") or {}
        if not isinstance(url, str) or not isinstance(fields, dict):
            raise ProviderPermanent("upload: no presigned URL in the answer")
        try:
            with path.open("rb") as handle:
                # Storage, not muapi: no API key goes there.
                stored = await self.client.post(
                    url,
                    data=fields,
                    files={"file": (name, handle, content_type)},
                    timeout=self.timeout,
                )
        except httpx.HTTPError as exc:
            raise web.transport_error(exc, what="upload") from exc
        web.raise_for(stored, what="upload")
        final = body.get("file_url") or body.get("public_url")
        if isinstance(final, str):
            return final
        return f"{url.rstrip('/')}/{fields.get('key', name)}"

    async def submit(self, spec: JobSpec) -> Submission:
        """Submit once; a 422 that names the other image/video field is retried once with it.

        Refusals come back as ``model_unavailable`` (404) or ``invalid_input`` (422): the job
        was not taken, so the poller may move it to the next model.
        """
        payload = build_payload(spec)
        try:
            response = await self._post_submit(spec, payload)
        except ProviderPermanent as exc:
            swap = swapped_field(str(exc), payload) if exc.reason == "invalid_input" else None
            if swap is None:
                raise
            log.info("muapi %s wants %s; submitting again with it", spec.model.endpoint, swap)
            # A 422 is a refusal before acceptance, so this second submit cannot double-bill.
            response = await self._post_submit(spec, build_payload(spec, swap))
        body = web.json_of(response, what="submit")
        request_id = body.get("request_id") or body.get("id")
        data: dict[str, Any] = {"cost": body.get("cost")}
        if not request_id:
            outputs = output_urls(body.get("outputs"))
            if not outputs:
                raise ProviderPermanent("submit: no request id in the answer")
            # Synchronous endpoints answer with the result itself.
            return Submission(
                external_id=f"sync{uuid.uuid4().hex}", data={**data, "outputs": list(outputs)}
            )
        return Submission(external_id=str(request_id), data=data)

    async def _post_submit(self, spec: JobSpec, payload: dict[str, Any]) -> httpx.Response:
        try:
            # muapi takes the completion webhook as a query parameter (providers.md §1.7).
            params = {"webhook": spec.callback_url} if spec.callback_url else None
            return await self._request(
                "POST", spec.model.endpoint, what="submit", json=payload, params=params
            )
        except ProviderPermanent as exc:
            if exc.reason == "not_found":
                raise ProviderPermanent(str(exc), reason="model_unavailable") from exc
            raise

    async def poll(self, submission: Submission) -> ProviderStatus:
        """Ask for the prediction's result."""
        if submission.data.get("outputs"):
            return ProviderStatus(
                ProviderState.COMPLETED,
                "completed",
                outputs=output_urls(submission.data["outputs"]),
            )
        try:
            response = await self._status(
                f"predictions/{submission.external_id}/result", what="poll"
            )
        except ProviderPermanent as exc:
            if "HTTP 400" in str(exc):
                # The result endpoint answers 400 for a failed prediction (muapi clients agree).
                return ProviderStatus(
                    ProviderState.FAILED, "failed", error=str(exc).split(": ", 2)[-1]
                )
            raise
        body = web.json_of(response, what="poll")
        raw = str(body.get("status", "")).lower()
        state = STATES.get(raw)
        if state is None:
            raise ProviderTransient(f"poll: unknown status {raw[:40]!r}", reached=True)
        return ProviderStatus(
            state,
            raw,
            progress=fraction(body.get("progress")),
            outputs=output_urls(body.get("outputs")),
            error=error_text(body.get("error")) or None,
            billed=not bool((body.get("cost") or {}).get("refunded", True)),
        )

    async def cancel(self, submission: Submission) -> bool:
        """muapi documents no cancel; the job runs out on its side."""
        return False

    async def fetch_output(self, url: str, dest: Path, max_bytes: int) -> None:
        """Stream an output from muapi's CDN (presigned URLs expire in an hour)."""
        await web.fetch_output(self.client, url, dest, max_bytes)

    async def discard(self, submission: Submission) -> None:
        """Nothing kept locally."""

    async def close(self) -> None:
        """The HTTP client belongs to the application; the status client is ours."""
        if self.statuses is not None:
            await self.statuses.aclose()
