"""A fake fal.ai server (aiohttp) playing both the queue host and the REST (storage) host.

Point the bot's fal queue URL and REST URL at :attr:`FakeFal.root`. Job behaviour comes from
:class:`~tests.fakes.provider_common.Scenario` (``fake.scenario`` for every new job,
``fake.next_scenarios`` for the next ones). Uploaded files and outputs are served by the fake
under ``{root}/files/...``.

Status, result and cancel live under ``/{owner}/{app}/requests/{id}`` — only the first two
segments of the model id, as on the real queue — so a client that rebuilds those URLs from the
full model id gets 404.

Every submit is checked against the model's input schema in ``schemas.json``: a model that is
not there answers 404, a body that breaks the schema answers 422 in fal's validation shape.
Setting :attr:`FakeFal.locked` plays an account out of money: fal then answers 403 "User is
locked. Reason: Exhausted balance" to billable calls (submit, storage upload) while status
requests still work (fal-ai/fal issues #1112, #1147, #1163).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fakes.provider_common import (
    FakeProviderServer,
    Job,
    RecordedRequest,
    Scenario,
    Submit,
    Upload,
    guess_type,
    parse_json_object,
    reply,
    safe_filename,
)
from tests.fakes.schema_check import Problem, models_of

WEBHOOK_USER = "fal-user-0001"

__all__ = ["FakeFal", "Job", "RecordedRequest", "Scenario", "Submit", "Upload"]

_RESERVED_ROOTS = frozenset(["storage", "upload", "files"])
_STORAGE_TYPES = frozenset(["fal-cdn-v3", "fal-cdn", "gcs"])
LOCKED_DETAIL = (
    "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
)
_TYPE_ERRORS = {
    "string": ("type_error.str", "str type expected"),
    "integer": ("type_error.integer", "value is not a valid integer"),
    "number": ("type_error.float", "value is not a valid float"),
    "boolean": ("type_error.bool", "value could not be parsed to a boolean"),
    "string_list": ("type_error.list", "value is not a valid list"),
}


def _problem_json(problem: Problem) -> dict[str, Any]:
    """One schema problem as fal's queue reports it (providers.md 2.7: pydantic-v1 style)."""
    kind, expected = problem.kind, problem.expected
    if kind == "missing":
        error, msg = "value_error.missing", "field required"
    elif kind == "extra":
        error, msg = "value_error.extra", "extra fields not permitted"
    elif kind == "type":
        error, msg = _TYPE_ERRORS[str(expected)]
    elif kind == "enum":
        permitted = ", ".join(repr(v) for v in expected)
        error, msg = "value_error.const", f"unexpected value; permitted: {permitted}"
    elif kind == "minimum":
        error, msg = (
            "value_error.number.not_ge",
            f"ensure this value is greater than or equal to {expected}",
        )
    elif kind == "maximum":
        error, msg = (
            "value_error.number.not_le",
            f"ensure this value is less than or equal to {expected}",
        )
    elif kind == "max_length":
        error, msg = (
            "value_error.any_str.max_length",
            f"ensure this value has at most {expected} characters",
        )
    else:
        error, msg = "value_error", f"only one of {', '.join(expected)} may be given"
    return {"loc": ["body", problem.field], "msg": msg, "type": error}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class FakeFal(FakeProviderServer):
    """An in-process HTTP server that mimics the fal.ai queue and storage APIs."""

    name = "fal"

    def __init__(self, key: str = "fal-test-key", *, seed: int = 42) -> None:
        super().__init__()
        self.key = key
        self.seed = seed
        self.cancels: list[str] = []
        self.pending_uploads: dict[str, tuple[str, str]] = {}
        self.locked = False  # out of money: billable calls answer 403 "User is locked"
        self.schemas = models_of("fal")
        # The key fal signs completion webhooks with; its public half is served as the JWKS.
        self.webhook_key = Ed25519PrivateKey.generate()

    # ------------------------------------------------------------------ routes

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        app.router.add_post("/storage/upload/initiate", self._initiate_upload)
        app.router.add_put("/upload/{token}", self._put_upload)
        base = "/{owner}/{app}/requests/{request_id}"
        app.router.add_get(f"{base}/status", self._status)
        app.router.add_put(f"{base}/cancel", self._cancel)
        app.router.add_get(base, self._result)
        app.router.add_post("/{model_id:.+}", self._submit)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Key {self.key}"

    @staticmethod
    def _unauthorized() -> web.Response:
        return web.json_response({"detail": "Unauthorized"}, status=401)

    @staticmethod
    def _locked() -> web.Response:
        return web.json_response({"detail": LOCKED_DETAIL}, status=403)

    @staticmethod
    async def _not_found(request: web.Request) -> web.Response:
        return web.json_response({"detail": "Not Found"}, status=404)

    def _request_url(self, job: Job, suffix: str = "") -> str:
        owner, app = job.endpoint.split("/")[:2]
        return f"{self.root}/{owner}/{app}/requests/{job.request_id}{suffix}"

    def _job_at(self, request: web.Request) -> Job | None:
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            return None
        owner, app = job.endpoint.split("/")[:2]
        if (request.match_info["owner"], request.match_info["app"]) != (owner, app):
            return None
        return job

    @staticmethod
    def _error_type(job: Job) -> str:
        if job.cancelled:
            return "request_cancelled"
        if job.scenario.error_type:
            return job.scenario.error_type
        if "content policy" in job.error.lower():
            return "content_policy_violation"
        return "internal_server_error"

    # ------------------------------------------------------------------ storage

    async def _initiate_upload(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        if self.locked:
            return self._locked()
        storage_type = request.query.get("storage_type", "fal-cdn-v3")
        if storage_type not in _STORAGE_TYPES:
            message = f"Unknown storage type {storage_type}"
            return web.json_response({"detail": message}, status=400)
        body = parse_json_object(await request.read())
        if body is None:
            detail = [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]
            return web.json_response({"detail": detail}, status=422)
        missing = [k for k in ("content_type", "file_name") if not isinstance(body.get(k), str)]
        if missing:
            detail = [
                {"loc": ["body", k], "msg": "Field required", "type": "missing"} for k in missing
            ]
            return web.json_response({"detail": detail}, status=422)
        token = uuid.uuid4().hex
        filename = safe_filename(body["file_name"])
        self.pending_uploads[token] = (filename, str(body["content_type"]))
        return web.json_response(
            {
                "upload_url": f"{self.root}/upload/{token}",
                "file_url": self._file_url(f"up/{token}/{filename}"),
            }
        )

    async def _put_upload(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        pending = self.pending_uploads.get(token)
        if pending is None:
            return web.json_response({"detail": "Upload not found"}, status=404)
        filename, declared = pending
        content_type = guess_type(filename, request.headers.get("Content-Type") or declared)
        data = await request.read()
        url = self._store_file(f"up/{token}/{filename}", data, content_type)
        self._record_upload(filename, content_type, data, url)
        return web.Response(status=200)

    # ------------------------------------------------------------------ queue

    async def _submit(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        model_id = request.match_info["model_id"].strip("/")
        segments = model_id.split("/")
        if len(segments) < 2 or "" in segments or segments[0] in _RESERVED_ROOTS:
            return web.json_response({"detail": "Not Found"}, status=404)
        if len(segments) > 2 and segments[2] == "requests":
            return web.json_response({"detail": "Method Not Allowed"}, status=405)
        query = dict(request.query)
        payload = parse_json_object(await request.read())
        scenario = self._peek_scenario()
        if self.locked:
            self.submits.append(Submit(model_id, payload or {}, None, False, 403, query))
            return self._locked()
        if scenario.submit_errors:
            status, body, headers = scenario.submit_errors.pop(0)
            self.submits.append(Submit(model_id, payload or {}, None, False, status, query))
            await self.pause(scenario.submit_delay)
            return reply(status, body, headers)
        problems = None if payload is None else self.schema_problems(model_id, payload)
        if payload is not None and problems is None:
            self.submits.append(Submit(model_id, payload, None, False, 404, query))
            return web.json_response({"detail": f"Application '{model_id}' not found"}, status=404)
        if payload is None or problems:
            self.submits.append(Submit(model_id, payload or {}, None, False, 422, query))
            await self.pause(scenario.submit_delay)
            detail = (
                [_problem_json(p) for p in problems]
                if problems
                else [
                    {"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}
                ]
            )
            return web.json_response({"detail": detail}, status=422)
        job = self._new_job(str(uuid.uuid4()), model_id, payload, scenario)
        self.submits.append(Submit(model_id, payload, job.request_id, True, 200, query))
        if query.get("fal_webhook"):
            self.call_back_later(job, query["fal_webhook"], self._callback_body, self._signed)
        await self.pause(scenario.submit_delay)
        sc = job.scenario
        position = 0 if sc.stall else min(sc.queue_polls, sc.polls_before_done)
        return web.json_response(
            {
                "status": "IN_QUEUE",
                "request_id": job.request_id,
                "gateway_request_id": job.request_id,
                "response_url": self._request_url(job),
                "status_url": self._request_url(job, "/status"),
                "cancel_url": self._request_url(job, "/cancel"),
                "queue_position": position,
            }
        )

    async def _status(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        job = self._job_at(request)
        if job is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        self.polls[job.request_id] += 1
        delay = self.poll_delay if job.scenario.poll_delay is None else job.scenario.poll_delay
        if delay:
            await asyncio.sleep(delay)
        if job.scenario.poll_errors:
            status, error_body = job.scenario.poll_errors.pop(0)
            return reply(status, error_body)
        with_logs = _flag(request.query.get("logs"))
        phase, number = job.advance()
        base: dict[str, Any] = {
            "request_id": job.request_id,
            "response_url": self._request_url(job),
        }
        if phase == "queued":
            return web.json_response({"status": "IN_QUEUE", "queue_position": number, **base})
        if phase == "running":
            logs = [
                {
                    "message": f"step {i}",
                    "level": "INFO",
                    "source": "user",
                    "timestamp": _iso(job.created + i),
                }
                for i in range(1, number + 1)
            ]
            running = {"status": "IN_PROGRESS", **base, "logs": logs if with_logs else None}
            return web.json_response(running)
        body: dict[str, Any] = {
            "status": "COMPLETED",
            **base,
            "logs": [] if with_logs else None,
            "metrics": {"inference_time": 1.2},
        }
        if job.failed:
            body["error"] = job.error
            body["error_type"] = self._error_type(job)
        return web.json_response(body)

    # --- completion webhooks, signed as fal signs them (providers.md §2.7, §7) ---------------

    def _callback_body(self, job: Job) -> bytes:
        if job.failed:
            body: dict[str, Any] = {
                "request_id": job.request_id,
                "gateway_request_id": job.request_id,
                "status": "ERROR",
                "error": job.error,
                "payload": {"detail": job.error},
            }
        else:
            video = {"url": self._file_url(self._output_path(job)), "content_type": "video/mp4"}
            body = {
                "request_id": job.request_id,
                "gateway_request_id": job.request_id,
                "status": "OK",
                "payload": {"video": video, "seed": self.seed},
            }
        return json.dumps(body).encode()

    def _signed(self, raw: bytes, *, at: float | None = None) -> dict[str, str]:
        """fal's headers: ED25519 over request id, user id, timestamp and the body's SHA-256."""
        request_id = json.loads(raw)["request_id"]
        stamp = str(int(at if at is not None else time.time()))
        digest = hashlib.sha256(raw).hexdigest()
        message = f"{request_id}\n{WEBHOOK_USER}\n{stamp}\n{digest}".encode()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": WEBHOOK_USER,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": self.webhook_key.sign(message).hex(),
        }

    async def _jwks(self, request: web.Request) -> web.Response:
        raw = self.webhook_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return web.json_response({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]})

    async def _result(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        job = self._job_at(request)
        if job is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        if not job.finished:
            return web.json_response({"detail": "Request is still in progress"}, status=400)
        if job.failed:
            error_type = self._error_type(job)
            return web.json_response(
                {"detail": job.error, "error_type": error_type},
                status=422,
                headers={"x-fal-error-type": error_type},
            )
        video = {
            "url": self._file_url(self._output_path(job)),
            "content_type": "video/mp4",
            "file_name": "output.mp4",
            "file_size": job.output_size,
        }
        return web.json_response({"video": video, "seed": self.seed})

    async def _cancel(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        job = self._job_at(request)
        if job is None:
            return web.json_response({"status": "NOT_FOUND"}, status=404)
        if job.finished or job.cancelled:
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        job.cancelled = True
        self.cancels.append(job.request_id)
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)
