"""The bot's HTTP side, served by uvicorn: Telegram's webhook, ``/healthz`` and ``/metrics``.

The webhook answers Telegram at once and leaves the work to the application's update queue:
Telegram waits at most a minute for an answer and sends again after that. A request without the
secret Telegram was given is refused before its body is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update

from bot.container import App, Services
from bot.settings import Settings
from services.model.jobs import ACTIVE_STATES, JobState

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_UPDATE_BYTES = 1_000_000  # an update is a few kB; anything near this is not Telegram
HEALTH_TIMEOUT = 2.0


@dataclass
class Metrics:
    """What ``/metrics`` shows; one registry per process (and per test)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.jobs = Gauge("studio_jobs", "Jobs by state", ["state"], registry=r)
        self.due_lag = Gauge(
            "studio_oldest_due_job_lag_seconds",
            "How long the most overdue active job has waited past its due time",
            registry=r,
        )
        self.updates = Counter(
            "studio_webhook_updates_total", "Updates received by webhook", registry=r
        )
        self.callbacks = Counter(
            "studio_provider_callbacks_total",
            "Provider callbacks, accepted or rejected, and why",
            ["result", "outcome"],
            registry=r,
        )
        self.rejected = Counter(
            "studio_webhook_rejected_total",
            "Webhook requests refused, by reason",
            ["reason"],
            registry=r,
        )


def listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) as a pair."""
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - the documented default


def webhook_path(url: str) -> str:
    """The path the bot serves for the webhook URL Telegram calls."""
    return urlsplit(url).path or "/"


class _QuietServer(uvicorn.Server):
    """uvicorn, minus its signal handlers: the bot stops it when the bot stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """The Starlette app and its uvicorn server, in the bot's own event loop."""

    def __init__(self, app: App, settings: Settings, *, webhook: bool) -> None:
        self.app = app
        self.settings = settings
        self.metrics = Metrics()
        self.webhook = webhook
        routes = [
            Route("/healthz", self.health, methods=["GET"]),
            Route("/metrics", self.export, methods=["GET"]),
            Route("/callbacks/{provider}/{job_id}/{secret}", self.callback, methods=["POST"]),
        ]
        if webhook:
            assert settings.telegram_webhook_url is not None
            path = webhook_path(settings.telegram_webhook_url)
            routes.append(Route(path, self.receive, methods=["POST"]))
        self.asgi = Starlette(routes=routes)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def services(self) -> Services:
        services: Services = self.app.bot_data["services"]
        return services

    async def start(self, listen: str) -> None:
        """Serve on ``listen`` (``host:port``) until ``stop``."""
        host, port = listen_address(listen)
        config = uvicorn.Config(
            self.asgi,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(), name="web")
        while not self._server.started:
            if self._task.done():
                await self._task  # it could not listen: raise why
                raise RuntimeError(f"the web server stopped at once on {listen}")
            await asyncio.sleep(0.01)
        log.info("listening on %s (webhook: %s)", listen, "on" if self.webhook else "off")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- routes ---------------------------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        """Telegram's POST: checked, queued, answered 200 at once."""
        secret = self.settings.telegram_webhook_secret
        given = request.headers.get(SECRET_HEADER, "")
        if secret is None or not hmac.compare_digest(
            given.encode(), secret.get_secret_value().encode()
        ):
            self.metrics.rejected.labels("secret").inc()
            return Response(status_code=403)
        declared = int(request.headers.get("content-length") or 0)
        if declared > MAX_UPDATE_BYTES:
            self.metrics.rejected.labels("size").inc()
            return Response(status_code=413)
        body = await request.body()
        try:
            data = json.loads(body)
            update = Update.de_json(data, self.app.bot) if isinstance(data, dict) else None
        except (ValueError, TypeError, KeyError, AttributeError):
            update = None
        if update is None:
            self.metrics.rejected.labels("malformed").inc()
            return Response(status_code=400)
        await self.app.update_queue.put(update)
        self.metrics.updates.inc()
        return Response(status_code=200)

    async def callback(self, request: Request) -> Response:
        """A provider says a job is done: checked (secret, signature), then the job is polled."""
        declared = int(request.headers.get("content-length") or 0)
        if declared > MAX_UPDATE_BYTES:
            self.metrics.callbacks.labels("rejected", "size").inc()
            return Response(status_code=413)
        body = await request.body()
        params = request.path_params
        verdict = await self.services.callbacks.receive(
            params["provider"], params["job_id"], params["secret"], request.headers, body
        )
        ok = verdict.status < 300
        self.metrics.callbacks.labels("accepted" if ok else "rejected", verdict.outcome).inc()
        return Response(status_code=verdict.status)

    async def health(self, request: Request) -> Response:
        """200 when the event loop and the database answer; 503 otherwise."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await self.services.db.fetchone("SELECT 1 AS ok")
        except Exception as exc:
            log.warning("health check: the database does not answer: %s", type(exc).__name__)
            return JSONResponse({"ok": False, "database": "unavailable"}, status_code=503)
        return JSONResponse({"ok": True})

    async def export(self, request: Request) -> Response:
        """Prometheus text: jobs by state and the oldest due job's lag, read now."""
        jobs = self.services.jobs
        counts = await jobs.count_by_state()
        for state in JobState:
            self.metrics.jobs.labels(state.value).set(counts.get(state.value, 0))
        oldest = await jobs.oldest_due([s for s in JobState if s in ACTIVE_STATES])
        now = jobs.clock()
        self.metrics.due_lag.set(max(0.0, now - oldest) if oldest is not None else 0.0)
        # This server's own figures, then the process's (submits, failures, waits, turns).
        body = generate_latest(self.metrics.registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
