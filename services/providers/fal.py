"""fal.ai's queue API.

Contract (providers.md §2): ``Authorization: Key``; upload through storage (initiate, then PUT
the bytes); submit to ``{queue}/{model_id}``; then follow the ``status_url``, ``response_url`` and
``cancel_url`` that the submit returned. They are never rebuilt: status and result live under
``{owner}/{app}`` only, not under the full model id (the subpath rule).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx

from services.errors import ProviderPermanent, ProviderTransient
from services.providers import http as web
from services.providers.base import JobSpec, ProviderState, ProviderStatus, Submission
from services.providers.payloads import build_payload

log = logging.getLogger(__name__)

URL_KEYS = ("status_url", "response_url", "cancel_url")


def result_urls(body: dict[str, Any]) -> tuple[str, ...]:
    """The output file URL of a result: ``video.url`` (or ``audio.url`` for audio models)."""
    for key in ("video", "audio"):
        item = body.get(key)
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            return (item["url"],)
    return ()


class FalProvider:
    """The fal.ai queue and storage HTTP APIs."""

    name = "fal"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        key: str,
        queue_url: str,
        rest_url: str,
        timeout: float = 60.0,
        statuses: web.StatusClient | None = None,
    ) -> None:
        self.client = client
        self.statuses = statuses  # status polls, when given (they come by the hundred)
        self.timeout = httpx.Timeout(timeout, connect=10.0)
        self.queue = queue_url.rstrip("/")
        self.rest = rest_url.rstrip("/")
        self._headers = {"Authorization": f"Key {key}"}

    def _own(self, url: str, *, what: str) -> None:
        # The key only ever goes to fal's own hosts, whatever URL an answer tries to send us to.
        if not (web.same_origin(url, self.queue) or web.same_origin(url, self.rest)):
            raise ProviderPermanent(f"{what}: refusing a URL outside fal's hosts")

    async def _request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        self._own(url, what=what)
        try:
            response = await self.client.request(
                method, url, headers=self._headers, timeout=self.timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise web.transport_error(exc, what=what) from exc
        web.raise_for(response, what=what)
        return response

    async def _status(
        self, url: str, *, what: str, params: dict[str, str] | None = None
    ) -> httpx.Response:
        if self.statuses is None:
            return await self._request("GET", url, what=what, params=params)
        self._own(url, what=what)
        response = await self.statuses.get(url, headers=self._headers, what=what, params=params)
        web.raise_for(response, what=what)
        return response

    async def upload(self, path: Path, content_type: str) -> str:
        """Upload the user's bytes to fal storage; return the file URL."""
        response = await self._request(
            "POST",
            f"{self.rest}/storage/upload/initiate",
            what="upload",
            params={"storage_type": "fal-cdn-v3"},
            json={"content_type": content_type, "file_name": f"input{path.suffix.lower()}"},
        )
        body = web.json_of(response, what="upload")
        upload_url, file_url = body.get("upload_url"), body.get("file_url")
        if not isinstance(upload_url, str) or not isinstance(file_url, str):
            raise ProviderPermanent("upload: no upload URL in the answer")
        try:
            # A signed storage URL: the bytes go there without our key.
            stored = await self.client.put(
                upload_url,
                content=web.file_chunks(path),
                headers={"Content-Type": content_type, "Content-Length": str(path.stat().st_size)},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise web.transport_error(exc, what="upload") from exc
        web.raise_for(stored, what="upload")
        return file_url

    async def submit(self, spec: JobSpec) -> Submission:
        """Queue the job; keep the URLs fal gives for it.

        Refusals come back as ``model_unavailable`` (404) or ``invalid_input`` (422), and an
        account out of money as ``out_of_credit`` (fal's 403 "User is locked"); see ``http``.
        """
        try:
            response = await self._request(
                "POST",
                f"{self.queue}/{spec.model.endpoint}",
                what="submit",
                json=build_payload(spec),
                params={"fal_webhook": spec.callback_url} if spec.callback_url else None,
            )
        except ProviderPermanent as exc:
            if exc.reason == "not_found":
                raise ProviderPermanent(str(exc), reason="model_unavailable") from exc
            raise
        body = web.json_of(response, what="submit")
        request_id = body.get("request_id")
        urls = {key: body.get(key) for key in URL_KEYS}
        if not request_id or not all(isinstance(u, str) for u in urls.values()):
            # It was accepted (2xx) but we cannot follow it: never submit it again.
            raise ProviderTransient("submit: answer without request id or URLs", reached=True)
        return Submission(external_id=str(request_id), data=urls)

    async def poll(self, submission: Submission) -> ProviderStatus:
        """Status first; the result only once the job says COMPLETED."""
        status_url = str(submission.data.get("status_url", ""))
        response = await self._status(status_url, what="poll", params={"logs": "1"})
        body = web.json_of(response, what="poll")
        status = str(body.get("status", ""))
        if status == "IN_QUEUE":
            position = body.get("queue_position")
            return ProviderStatus(
                ProviderState.QUEUED,
                status,
                queue_position=position if isinstance(position, int) else None,
            )
        if status == "IN_PROGRESS":
            logs = body.get("logs") or []
            # New log lines are progress, so they keep a long render from counting as stalled.
            return ProviderStatus(ProviderState.RUNNING, f"{status}:{len(logs)}")
        if status == "COMPLETED":
            if body.get("error"):
                return ProviderStatus(ProviderState.FAILED, status, error=str(body["error"]))
            return await self._result(submission)
        if status in ("CANCELED", "CANCELLED", "CANCELLATION_REQUESTED"):
            return ProviderStatus(ProviderState.CANCELED, status)
        if status == "FAILED":
            return ProviderStatus(ProviderState.FAILED, status, error=str(body.get("error", "")))
        raise ProviderTransient(f"poll: unknown status {status[:40]!r}", reached=True)

    async def _result(self, submission: Submission) -> ProviderStatus:
        try:
            response = await self._status(
                str(submission.data.get("response_url", "")), what="result"
            )
        except ProviderPermanent as exc:
            if exc.reason in ("out_of_credit", "auth"):
                raise
            return ProviderStatus(
                ProviderState.FAILED, "COMPLETED", error=str(exc).split(": ", 2)[-1]
            )
        body = web.json_of(response, what="result")
        return ProviderStatus(ProviderState.COMPLETED, "COMPLETED", outputs=result_urls(body))

    async def cancel(self, submission: Submission) -> bool:
        """Ask fal to cancel; a running job only gets a signal and may still be billed."""
        cancel_url = submission.data.get("cancel_url")
        if not isinstance(cancel_url, str):
            return False
        try:
            await self._request("PUT", cancel_url, what="cancel")
        except ProviderPermanent:
            return False
        return True

    async def fetch_output(self, url: str, dest: Path, max_bytes: int) -> None:
        """Stream an output from fal's CDN."""
        await web.fetch_output(self.client, url, dest, max_bytes)

    async def discard(self, submission: Submission) -> None:
        """Nothing kept locally."""

    async def close(self) -> None:
        """The HTTP client belongs to the application; the status client is ours."""
        if self.statuses is not None:
            await self.statuses.aclose()
