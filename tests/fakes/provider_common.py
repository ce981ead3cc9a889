"""Shared plumbing for the fake video-provider servers (muapi.ai and fal.ai).

Each fake is an aiohttp server on 127.0.0.1 that records every request it receives, runs
jobs whose behaviour is described by a :class:`Scenario`, and serves uploaded files and job
outputs itself under ``{root}/files/...``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import mimetypes
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from aiohttp import hdrs, web
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from tests.fakes.schema_check import Problem, check
from tests.fakes.server import LocalServer

__all__ = [
    "FAKE_MP4",
    "FakeProviderServer",
    "FormPart",
    "Job",
    "RecordedRequest",
    "Scenario",
    "Submit",
    "Upload",
    "parse_multipart",
]

MAX_REQUEST_BYTES = 300 * 1024 * 1024
RECORD_CAP = 2 * 1024 * 1024
_CHUNK = 256 * 1024

# A tiny, fixed ISO-BMFF blob (ftyp + free + mdat boxes); enough to look like an mp4.
FAKE_MP4: bytes = (
    b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    b"\x00\x00\x00\x08free"
    b"\x00\x00\x00\x28mdat" + b"fake video payload for provider tests!!!"[:32]
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Phase = Literal["queued", "running", "done"]


@dataclass
class Scenario:
    """How one job behaves on the fake provider."""

    polls_before_done: int = 2
    queue_polls: int = 0
    fail_with: str | None = None
    stall: bool = False
    submit_errors: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    poll_errors: list[tuple[int, Any]] = field(default_factory=list)
    output: bytes | Path | None = None
    output_expired: bool = False
    output_cut_off: bool = False
    submit_delay: float = 0.0
    error_type: str | None = None
    # Finish this many seconds after the submit, whatever the polls (and call back then, when
    # the submit asked for a callback).
    done_after: float | None = None
    # This job's status polls take this long to answer (else the fake's ``poll_delay``).
    poll_delay: float | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    size: int
    at: float = field(default_factory=time.monotonic)

    def contains(self, needle: str | bytes) -> bool:
        """True if ``needle`` occurs in the path, query, any header or the stored body."""
        raw = needle.encode() if isinstance(needle, str) else needle
        text = raw.decode(errors="replace")
        if text in self.path or text in self.query or text in unquote(self.query):
            return True
        if any(text in k or text in v for k, v in self.headers.items()):
            return True
        return raw in self.body


@dataclass(frozen=True)
class Upload:
    """A file the provider accepted from the client."""

    filename: str
    content_type: str
    size: int
    sha256: str
    url: str = ""


@dataclass
class Submit:
    """One submit attempt; ``accepted`` is False for attempts that got an error answer."""

    endpoint: str
    payload: dict[str, Any]
    request_id: str | None
    accepted: bool
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """A submitted job and how far it has progressed (progress is driven by polls)."""

    request_id: str
    endpoint: str
    payload: dict[str, Any]
    scenario: Scenario
    index: int
    answered: int = 0
    finished: bool = False
    cancelled: bool = False
    created: float = field(default_factory=time.time)

    @property
    def failed(self) -> bool:
        """True if the job ends (or ended) in an error."""
        return self.cancelled or self.scenario.fail_with is not None

    @property
    def succeeded(self) -> bool:
        """True once the job has reported a successful terminal state."""
        return self.finished and not self.failed

    @property
    def error(self) -> str:
        """Error text of a failed job."""
        if self.cancelled:
            return "Request was cancelled"
        return self.scenario.fail_with or ""

    @property
    def output(self) -> bytes | Path:
        """The video this job produces."""
        return FAKE_MP4 if self.scenario.output is None else self.scenario.output

    @property
    def output_size(self) -> int:
        """Size in bytes of the output video."""
        out = self.output
        return out.stat().st_size if isinstance(out, Path) else len(out)

    def advance(self) -> tuple[Phase, int]:
        """Answer one status poll: the phase and its number (queue position or step)."""
        if self.finished:
            return "done", 0
        if self.cancelled:
            self.finished = True
            return "done", 0
        sc = self.scenario
        if sc.stall:
            return "running", 1
        if sc.done_after is not None:
            if time.time() - self.created < sc.done_after:
                return "running", 1
            self.finished = True
            return "done", 0
        n = self.answered
        self.answered += 1
        if n < sc.polls_before_done:
            queued = min(sc.queue_polls, sc.polls_before_done)
            if n < queued:
                return "queued", queued - 1 - n
            return "running", n - queued + 1
        self.finished = True
        return "done", 0


@dataclass
class FormPart:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class _StoredFile:
    content: bytes | Path
    content_type: str
    expired: bool = False
    cut_off: bool = False


def parse_multipart(body: bytes, content_type: str) -> list[FormPart]:
    """Split a multipart/form-data body into its parts; raises ValueError when malformed."""
    msg = Message()
    msg["content-type"] = content_type
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart body without a boundary")
    delim = b"--" + boundary.encode("latin-1")
    start = body.find(delim)
    if start < 0:
        raise ValueError("multipart boundary not found")
    pos = start + len(delim)
    parts: list[FormPart] = []
    while True:
        if body[pos : pos + 2] == b"--":
            return parts
        if body[pos : pos + 2] != b"\r\n":
            raise ValueError("malformed multipart delimiter")
        head_end = body.find(b"\r\n\r\n", pos + 2)
        if head_end < 0:
            raise ValueError("multipart part without a header end")
        headers: dict[str, str] = {}
        for line in body[pos + 2 : head_end].decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        end = body.find(b"\r\n" + delim, head_end + 4)
        if end < 0:
            raise ValueError("unterminated multipart part")
        disposition, params = parse_content_disposition(headers.get("content-disposition"))
        if disposition != "form-data" or "name" not in params:
            raise ValueError("multipart part without a form-data name")
        parts.append(
            FormPart(
                name=params["name"],
                filename=content_disposition_filename(params, "filename"),
                content_type=headers.get("content-type"),
                data=body[head_end + 4 : end],
            )
        )
        pos = end + 2 + len(delim)


def safe_filename(name: str | None, default: str = "file") -> str:
    """The last path component of a client-supplied file name."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    return base if base not in ("", ".", "..") else default


def guess_type(filename: str, declared: str | None) -> str:
    """The declared content type, or one guessed from the file name."""
    if declared and declared != "application/octet-stream":
        return declared.split(";")[0].strip()
    return mimetypes.guess_type(filename)[0] or declared or "application/octet-stream"


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer (or a plain-text one when ``body`` is str/bytes)."""
    if isinstance(body, bytes):
        return web.Response(status=status, body=body, headers=headers)
    if isinstance(body, str):
        return web.Response(status=status, text=body, headers=headers)
    return web.json_response(body, status=status, headers=headers)


def parse_json_object(raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None if it is not one."""
    try:
        value = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class FakeProviderServer(LocalServer):
    """Base class: lifecycle, request recording, scenarios, jobs and file serving."""

    name = "provider"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[RecordedRequest] = []
        self.uploads: list[Upload] = []
        self.submits: list[Submit] = []
        self.jobs: dict[str, Job] = {}
        self.polls: dict[str, int] = {}
        self.downloads: list[str] = []
        self.download_delay = 0.0
        self.poll_delay = 0.0  # how long every status poll takes to answer
        self.answered_polls: list[tuple[float, str]] = []  # (monotonic time, request id)
        self.errors: list[Exception] = []
        # Each fake's own copy of its models' input schemas (schemas.json); a test may tighten it.
        self.schemas: dict[str, dict[str, Any]] = {}
        self.scenario = Scenario()
        self.next_scenarios: list[Scenario] = []
        # Completion callbacks the fake made: (url, HTTP status of the answer, 0 if none).
        self.callbacks: list[tuple[str, int]] = []
        # (public prefix, local prefix): the test's stand-in for the TLS proxy in front of the
        # bot, since the providers call an https URL.
        self.proxy: tuple[str, str] | None = None
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self._files: dict[str, _StoredFile] = {}

    # ------------------------------------------------------------------ lifecycle

    def application(self) -> web.Application:
        """The provider's routes, every request recorded and checked by ``_dispatch``."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._dispatch(request, handler)

        app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[middleware])
        app.router.add_get("/files/{path:.+}", self._handle_file)
        self._add_routes(app)
        return app

    # ------------------------------------------------------------------ test helpers

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll ``predicate`` every 20 ms until it returns something truthy and return that."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout}s\n{self.dump()}")
            await asyncio.sleep(0.02)

    def dump(self, last: int = 25) -> str:
        """A readable summary of recent requests and jobs, for failure output."""
        recent = self.requests[-last:]
        lines = [f"{self.name}: last {len(recent)} of {len(self.requests)} requests:"]
        start = recent[0].at if recent else 0.0
        for r in recent:
            query = f"?{r.query}" if r.query else ""
            lines.append(f"  +{r.at - start:6.3f}s {r.method} {r.path}{query} ({r.size} bytes)")
        for job in self.jobs.values():
            state = "finished" if job.finished else f"answered {job.answered}"
            flag = " failed" if job.failed else ""
            lines.append(f"  job {job.request_id} {job.endpoint}: {state}{flag}")
        return "\n".join(lines)

    def requests_containing(self, needle: str | bytes) -> list[RecordedRequest]:
        """Every recorded request whose path, query, headers or stored body contain ``needle``."""
        return [r for r in self.requests if r.contains(needle)]

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path starts with ``path_prefix`` (optionally one method)."""
        return [
            r
            for r in self.requests
            if r.path.startswith(path_prefix) and (method is None or r.method == method.upper())
        ]

    def schema_for(self, endpoint: str) -> dict[str, Any]:
        """The input schema this fake enforces for ``endpoint`` (mutable, for the test's sake)."""
        return self.schemas[endpoint]

    def schema_problems(self, endpoint: str, payload: dict[str, Any]) -> list[Problem] | None:
        """How a submit body breaks the model's schema; None if the model is unknown here."""
        schema = self.schemas.get(endpoint)
        return None if schema is None else check(schema, payload)

    def accepted_submits(self) -> list[Submit]:
        """Submits that created a job."""
        return [s for s in self.submits if s.accepted]

    def file_content(self, url_or_path: str) -> bytes:
        """The bytes served at a ``{root}/files/...`` URL (or the path after ``/files/``)."""
        path = url_or_path
        if "://" in path:
            path = urlsplit(path).path
        path = unquote(path).removeprefix("/").removeprefix("files/")
        stored = self._lookup_file(path)
        if stored is None:
            raise KeyError(url_or_path)
        content = stored.content
        return content.read_bytes() if isinstance(content, Path) else content

    # ------------------------------------------------------------------ for subclasses

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _file_url(self, path: str) -> str:
        return f"{self.root}/files/{quote(path)}"

    def _store_file(self, path: str, content: bytes, content_type: str) -> str:
        self._files[path] = _StoredFile(content, content_type)
        return self._file_url(path)

    def _record_upload(self, filename: str, content_type: str, data: bytes, url: str) -> Upload:
        upload = Upload(filename, content_type, len(data), hashlib.sha256(data).hexdigest(), url)
        self.uploads.append(upload)
        return upload

    def _output_path(self, job: Job) -> str:
        return f"out/{job.request_id}.mp4"

    def _peek_scenario(self) -> Scenario:
        return self.next_scenarios[0] if self.next_scenarios else self.scenario

    def _new_job(
        self, request_id: str, endpoint: str, payload: dict[str, Any], source: Scenario
    ) -> Job:
        if self.next_scenarios and self.next_scenarios[0] is source:
            self.next_scenarios.pop(0)
        scenario = replace(source, submit_errors=[], poll_errors=list(source.poll_errors))
        job = Job(request_id, endpoint, payload, scenario, index=len(self.jobs))
        self.jobs[request_id] = job
        self.polls[request_id] = 0
        return job

    def call_back_later(
        self,
        job: Job,
        url: str,
        body: Callable[[Job], bytes],
        headers: Callable[[bytes], dict[str, str]],
    ) -> None:
        """When ``job`` finishes (after ``done_after``, or by its polls), POST ``body`` to ``url``
        as the provider does."""

        async def later() -> None:
            if job.scenario.done_after is not None:
                await asyncio.sleep(job.scenario.done_after)
                job.finished = True
            while not job.finished:  # finished by its polls, or never (a stalled job)
                if self.closing.is_set():
                    return
                await asyncio.sleep(0.05)
            raw = body(job)
            target = url
            if self.proxy is not None and url.startswith(self.proxy[0]):
                target = self.proxy[1] + url.removeprefix(self.proxy[0])
            sent = {"Content-Type": "application/json", **headers(raw)}
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(target, data=raw, headers=sent) as reply_,
                ):
                    self.callbacks.append((url, reply_.status))
            except aiohttp.ClientError:
                self.callbacks.append((url, 0))

        task = asyncio.create_task(later())
        self._callback_tasks.add(task)
        task.add_done_callback(self._callback_tasks.discard)

    def seed_job(self, scenario: Scenario, endpoint: str = "seeded") -> str:
        """A job that was submitted before this server started; returns its request id."""
        return self._new_job(f"seed-{len(self.jobs)}", endpoint, {}, scenario).request_id

    # ------------------------------------------------------------------ HTTP plumbing

    async def _dispatch(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._record(request, b"", request.content_length or 0)
            raise
        self._record(request, body, len(body))
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            self.errors.append(exc)
            return web.json_response({"detail": f"Internal Server Error: {exc!r}"}, status=500)

    def _record(self, request: web.Request, body: bytes, size: int) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body[:RECORD_CAP],
                size=size,
            )
        )

    def _lookup_file(self, path: str) -> _StoredFile | None:
        stored = self._files.get(path)
        if stored is not None:
            return stored
        if path.startswith("out/") and path.endswith(".mp4"):
            job = self.jobs.get(path.removeprefix("out/").removesuffix(".mp4"))
            if job is not None and job.succeeded:
                sc = job.scenario
                return _StoredFile(job.output, "video/mp4", sc.output_expired, sc.output_cut_off)
        return None

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        stored = self._lookup_file(path)
        if stored is None or stored.expired:
            return web.json_response({"detail": "Not Found"}, status=404)
        self.downloads.append(path)
        if self.download_delay and path.startswith("out/"):
            await asyncio.sleep(self.download_delay)  # a slow CDN: time to crash mid-download
        content = stored.content
        if stored.cut_off:
            return await self._send_cut_off(request, content, stored.content_type)
        if isinstance(content, Path):
            return web.FileResponse(content, headers={hdrs.CONTENT_TYPE: stored.content_type})
        return web.Response(body=content, content_type=stored.content_type)

    @staticmethod
    async def _send_cut_off(
        request: web.Request, content: bytes | Path, content_type: str
    ) -> web.StreamResponse:
        """Announce the full length, send half the body, then drop the connection."""
        size = content.stat().st_size if isinstance(content, Path) else len(content)
        response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: content_type})
        response.content_length = size
        await response.prepare(request)
        remaining = size // 2
        if isinstance(content, Path):
            with content.open("rb") as fh:
                while remaining > 0 and (chunk := fh.read(min(_CHUNK, remaining))):
                    await response.write(chunk)
                    remaining -= len(chunk)
        else:
            view = memoryview(content)
            for start in range(0, remaining, _CHUNK):
                await response.write(view[start : min(start + _CHUNK, remaining)])
        request.protocol.force_close()
        if request.transport is not None:
            request.transport.close()
        return response
