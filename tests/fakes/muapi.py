"""A fake muapi.ai server (aiohttp) that speaks the ``/api/v1`` submit → poll protocol.

Point the bot's muapi base URL at :attr:`FakeMuapi.root`; the bot appends ``/api/v1/...``.
Job behaviour comes from :class:`~tests.fakes.provider_common.Scenario` (``fake.scenario`` for
every new job, ``fake.next_scenarios`` for the next ones). Uploaded files and outputs are served
by the fake under ``{root}/files/...``.

Every submit is checked against the model's input schema in ``schemas.json``: an endpoint that
is not there answers 404, a body that breaks the schema answers 422 in muapi's FastAPI shape.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiohttp import web

from tests.fakes.provider_common import (
    FakeProviderServer,
    Job,
    RecordedRequest,
    Scenario,
    Submit,
    Upload,
    guess_type,
    parse_json_object,
    parse_multipart,
    reply,
    safe_filename,
)
from tests.fakes.schema_check import Problem, models_of

__all__ = ["FakeMuapi", "Job", "RecordedRequest", "Scenario", "Submit", "Upload"]

_API = "/api/v1"


def _new_id() -> str:
    return "mu-" + secrets.token_hex(6)


_TYPE_ERRORS = {
    "string": ("string_type", "Input should be a valid string"),
    "integer": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
    "boolean": ("bool_type", "Input should be a valid boolean"),
    "string_list": ("list_type", "Input should be a valid list"),
}


def _choices(values: list[Any]) -> str:
    shown = [repr(v) if isinstance(v, str) else str(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _problem_json(problem: Problem) -> dict[str, Any]:
    """One schema problem as muapi's FastAPI (pydantic v2) reports it."""
    kind, expected = problem.kind, problem.expected
    if kind == "missing":
        error, msg = "missing", "Field required"
    elif kind == "extra":
        error, msg = "extra_forbidden", "Extra inputs are not permitted"
    elif kind == "type":
        error, msg = _TYPE_ERRORS[str(expected)]
    elif kind == "enum":
        error, msg = "literal_error", f"Input should be {_choices(expected)}"
    elif kind == "minimum":
        error, msg = "greater_than_equal", f"Input should be greater than or equal to {expected}"
    elif kind == "maximum":
        error, msg = "less_than_equal", f"Input should be less than or equal to {expected}"
    elif kind == "max_length":
        error, msg = "string_too_long", f"String should have at most {expected} characters"
    else:
        error, msg = "value_error", f"Value error, send only one of {', '.join(expected)}"
    return {"loc": ["body", problem.field], "msg": msg, "type": error}


class FakeMuapi(FakeProviderServer):
    """An in-process HTTP server that mimics the muapi.ai REST API."""

    name = "muapi"

    def __init__(
        self,
        api_key: str = "muapi-test-key",
        *,
        balance: float = 42.5,
        cost_usd: float = 0.225,
        cost_credits: int = 45,
        max_image_bytes: int = 10_000_000,
        max_video_bytes: int = 50_000_000,
        max_other_bytes: int = 10_000_000,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.balance = balance
        self.cost_usd = cost_usd
        self.cost_credits = cost_credits
        self.max_image_bytes = max_image_bytes
        self.max_video_bytes = max_video_bytes
        self.max_other_bytes = max_other_bytes
        self.object_outputs: bool | None = None
        self.presigned: dict[str, dict[str, str]] = {}
        self.schemas = models_of("muapi")

    @property
    def api_url(self) -> str:
        """``{root}/api/v1``."""
        return f"{self.root}{_API}"

    # ------------------------------------------------------------------ routes

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/s3", self._s3_post)
        # Like S3, an object posted with a presigned form is then at the bucket URL + its key.
        app.router.add_get("/s3/{path:.+}", self._handle_file)
        app.router.add_post(f"{_API}/upload_file", self._upload_file)
        app.router.add_get(f"{_API}/get_upload_url", self._get_upload_url)
        app.router.add_get(f"{_API}/account/balance", self._balance)
        app.router.add_get(f"{_API}/predictions/{{request_id}}/result", self._poll)
        app.router.add_post(f"{_API}/{{endpoint:.+}}", self._submit)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("x-api-key") == self.api_key

    def _unauthorized(self) -> web.Response:
        return web.json_response({"detail": "Invalid API key"}, status=401)

    def _cost(self, *, refunded: bool = False) -> dict[str, Any]:
        return {
            "amount_usd": self.cost_usd,
            "amount_credits": self.cost_credits,
            "bonus_credits_used": 0,
            "refunded": refunded,
        }

    def _cost_headers(self, *, refunded: bool = False) -> dict[str, str]:
        return {
            "X-MuAPI-Cost-USD": str(self.cost_usd),
            "X-MuAPI-Cost-Credits": str(self.cost_credits),
            "X-MuAPI-Cost-Bonus-Credits": "0",
            "X-MuAPI-Cost-Refunded": "true" if refunded else "false",
            "X-Account-Balance": str(self.balance),
        }

    @staticmethod
    def _insufficient() -> web.Response:
        return web.json_response({"detail": "Insufficient balance"}, status=402)

    async def _not_found(self, request: web.Request) -> web.Response:
        if request.path.startswith(f"{_API}/") and not self._authorized(request):
            return self._unauthorized()
        return web.json_response({"detail": "Not Found"}, status=404)

    # ------------------------------------------------------------------ account & uploads

    async def _balance(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return web.json_response({"balance": self.balance})

    def _size_cap(self, content_type: str) -> int:
        if content_type.startswith("video/"):
            return self.max_video_bytes
        if content_type.startswith("image/"):
            return self.max_image_bytes
        return self.max_other_bytes

    async def _upload_file(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        if self.balance <= 0:
            return self._insufficient()
        try:
            parts = parse_multipart(await request.read(), request.headers.get("Content-Type", ""))
        except ValueError as exc:
            return web.json_response({"detail": f"Invalid multipart body: {exc}"}, status=400)
        part = next((p for p in parts if p.name == "file" and p.filename is not None), None)
        if part is None:
            detail = [{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]
            return web.json_response({"detail": detail}, status=422)
        filename = safe_filename(part.filename)
        content_type = guess_type(filename, part.content_type)
        if len(part.data) > self._size_cap(content_type):
            return web.json_response({"detail": "File too large"}, status=413)
        path = f"up/{secrets.token_hex(8)}/{filename}"
        url = self._store_file(path, part.data, content_type)
        self._record_upload(filename, content_type, part.data, url)
        return web.json_response({"url": url})

    async def _get_upload_url(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        raw_name = request.query.get("filename")
        if not raw_name:
            detail = [{"loc": ["query", "filename"], "msg": "Field required", "type": "missing"}]
            return web.json_response({"detail": detail}, status=422)
        key = f"uploads/{secrets.token_hex(8)}/{safe_filename(raw_name)}"
        fields = {"key": key, "policy": "p", "x-amz-signature": "s"}
        self.presigned[key] = fields
        return web.json_response({"url": f"{self.root}/s3", "fields": fields})

    @staticmethod
    def _s3_error(code: str, message: str, status: int) -> web.Response:
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return web.Response(status=status, text=body, content_type="application/xml")

    async def _s3_post(self, request: web.Request) -> web.Response:
        try:
            parts = parse_multipart(await request.read(), request.headers.get("Content-Type", ""))
        except ValueError:
            return self._s3_error("MalformedPOSTRequest", "Bad multipart body", 400)
        fields = {p.name: p.data.decode("utf-8", "replace") for p in parts if p.filename is None}
        file_part = next((p for p in parts if p.name == "file"), None)
        issued = self.presigned.get(fields.get("key", ""))
        if issued is None or any(fields.get(k) != v for k, v in issued.items()):
            return self._s3_error("AccessDenied", "Invalid according to Policy", 403)
        if file_part is None:
            return self._s3_error("InvalidArgument", "POST requires exactly one file", 400)
        key = issued["key"]
        filename = safe_filename(key)
        content_type = guess_type(filename, fields.get("Content-Type") or file_part.content_type)
        url = self._store_file(key, file_part.data, content_type)
        self._record_upload(filename, content_type, file_part.data, url)
        status = fields.get("success_action_status", "204")
        return web.Response(status=int(status) if status in ("200", "201") else 204)

    # ------------------------------------------------------------------ jobs

    async def _submit(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        endpoint = request.match_info["endpoint"]
        if endpoint.startswith("predictions/"):
            return web.json_response({"detail": "Method Not Allowed"}, status=405)
        query = dict(request.query)
        payload = parse_json_object(await request.read())
        scenario = self._peek_scenario()
        if self.balance <= 0:
            self.submits.append(Submit(endpoint, payload or {}, None, False, 402, query))
            return self._insufficient()
        if scenario.submit_errors:
            status, body, headers = scenario.submit_errors.pop(0)
            self.submits.append(Submit(endpoint, payload or {}, None, False, status, query))
            await self.pause(scenario.submit_delay)
            return reply(status, body, headers)
        problems = None if payload is None else self.schema_problems(endpoint, payload)
        if payload is not None and problems is None:
            # An endpoint muapi does not have: FastAPI's own answer for an unknown route.
            self.submits.append(Submit(endpoint, payload, None, False, 404, query))
            return web.json_response({"detail": "Not Found"}, status=404)
        if payload is None or problems:
            detail = (
                [_problem_json(p) for p in problems]
                if problems
                else [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]
            )
            self.submits.append(Submit(endpoint, payload or {}, None, False, 422, query))
            await self.pause(scenario.submit_delay)
            return web.json_response({"detail": detail}, status=422)
        job = self._new_job(_new_id(), endpoint, payload, scenario)
        self.submits.append(Submit(endpoint, payload, job.request_id, True, 200, query))
        if query.get("webhook"):
            # Unsigned, as muapi documents it (providers.md §1.7).
            self.call_back_later(job, query["webhook"], self._callback_body, lambda raw: {})
        await self.pause(scenario.submit_delay)
        body = {"request_id": job.request_id, "status": "processing", "cost": self._cost()}
        return web.json_response(body, headers=self._cost_headers())

    def _callback_body(self, job: Job) -> bytes:
        rid = job.request_id
        result_url = f"{self.root}/api/v1/predictions/{rid}/result"
        if job.failed:
            body = {"id": rid, "status": "failed", "error": job.error, "outputs": []}
        else:
            body = {
                "id": rid,
                "status": "completed",
                "outputs": [self._file_url(self._output_path(job))],
            }
        return json.dumps({**body, "urls": {"get": result_url}}).encode()

    def _uses_object_outputs(self, job: Job) -> bool:
        if self.object_outputs is not None:
            return self.object_outputs
        return job.index % 2 == 1

    async def _poll(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        job = self.jobs.get(request.match_info["request_id"])
        if job is None:
            return web.json_response({"detail": "Prediction not found"}, status=404)
        self.polls[job.request_id] += 1
        delay = self.poll_delay if job.scenario.poll_delay is None else job.scenario.poll_delay
        if delay:
            await asyncio.sleep(delay)
        self.answered_polls.append((time.monotonic(), job.request_id))
        if job.scenario.poll_errors:
            status, body = job.scenario.poll_errors.pop(0)
            return reply(status, body)
        phase, _ = job.advance()
        rid = job.request_id
        if phase != "done":
            status_text = "queued" if phase == "queued" else "processing"
            return web.json_response({"id": rid, "status": status_text, "outputs": []})
        if job.failed:
            body = {
                "id": rid,
                "status": "failed",
                "error": job.error,
                "outputs": [],
                "cost": self._cost(refunded=True),
            }
            return web.json_response(body, headers=self._cost_headers(refunded=True))
        url = self._file_url(self._output_path(job))
        outputs: list[Any] = [{"url": url}] if self._uses_object_outputs(job) else [url]
        body = {"id": rid, "status": "completed", "outputs": outputs, "cost": self._cost()}
        return web.json_response(body, headers=self._cost_headers())
