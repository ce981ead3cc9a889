"""The composition root: builds the Application and wires the services into it."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Literal

import httpx
from telegram.ext import ApplicationBuilder, ContextTypes

import handlers
from bot.container import App, Services
from bot.ordering import PerPersonOrder
from bot.settings import Settings
from handlers.context import StudioContext
from services.conversation.account import Account
from services.conversation.prompt_craft import PromptCrafter
from services.conversation.shop import Shop
from services.conversation.studio import Studio
from services.media import ffmpeg as media
from services.production.alerts import Alerts
from services.production.credits import Credits
from services.production.delivery import Delivery
from services.production.housekeeping import Housekeeping
from services.production.poller import POLLS_IN_FLIGHT, Poller, PollerConfig
from services.providers.base import Provider, ProviderSet
from services.providers.callbacks import Callbacks, FalSignatures
from services.providers.fal import FalProvider
from services.providers.http import StatusClient
from services.providers.local import LocalStudio
from services.providers.muapi import MuapiProvider
from services.storage.connect import open_database
from services.storage.payments import PaymentRepository
from services.storage.repositories import (
    DUE_CHANNEL,
    AlbumRepository,
    AlertRepository,
    Clock,
    JobRepository,
    LeaseRepository,
    LedgerRepository,
    MediaRepository,
    SendTokenRepository,
    UpdateRepository,
    UserRepository,
)
from services.telegram.flood import FloodGuard
from services.telegram.messenger import Messenger
from services.telegram.send_budget import SendBudget

log = logging.getLogger(__name__)

Role = Literal["all", "ingress", "worker"]


def make_providers(settings: Settings, http: httpx.AsyncClient, polls: int) -> ProviderSet:
    """The backend chosen by the settings, plus the local studio for free local work
    (``polls``: how many status polls may run at once)."""
    local = LocalStudio(settings.data_dir, height=settings.local_studio_height)
    main = _remote_provider(settings, http, polls)
    return ProviderSet(main=main or local, local=local)


def _remote_provider(settings: Settings, http: httpx.AsyncClient, polls: int) -> Provider | None:
    def statuses() -> StatusClient:
        # A connection for each poll that may run at once; the provider closes them.
        return StatusClient(polls, timeout=settings.provider_timeout_seconds)

    if settings.provider == "muapi" and settings.muapi_api_key is not None:
        return MuapiProvider(
            http,
            api_key=settings.muapi_api_key.get_secret_value(),
            base_url=settings.muapi_base_url,
            timeout=settings.provider_timeout_seconds,
            statuses=statuses(),
        )
    if settings.provider == "fal" and settings.fal_key is not None:
        return FalProvider(
            http,
            key=settings.fal_key.get_secret_value(),
            queue_url=settings.fal_queue_url,
            rest_url=settings.fal_rest_url,
            timeout=settings.provider_timeout_seconds,
            statuses=statuses(),
        )
    return None


async def open_services(
    app: App, settings: Settings, clock: Clock = time.time, role: Role = "all"
) -> Services:
    """Open the database and HTTP client and wire every service (``role``: what this process
    does; see ``build_application``)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.database_url)
    await db.open()
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True)
    polls = settings.poll_concurrency(answers_people=role != "worker")
    providers = make_providers(settings, http, polls * POLLS_IN_FLIGHT)
    jobs = JobRepository(db, clock)
    users = UserRepository(db, clock)
    media = MediaRepository(db, clock)
    credits = Credits(
        LedgerRepository(db, clock),
        clock,
        daily=settings.daily_credits,
        zone=settings.zone,
        admins=frozenset(settings.admin_user_ids),
    )
    messenger = Messenger(
        app.bot,
        http,
        api_root=settings.telegram_api_url,
        token=settings.telegram_bot_token.get_secret_value(),
        local_mode=settings.telegram_local_mode,
        upload_timeout=settings.telegram_upload_timeout_seconds,
        budget=limiter if isinstance(limiter := app.bot.rate_limiter, SendBudget) else None,
    )
    if messenger.budget is not None and db.dialect == "postgres":
        # Several processes may send for this bot: Telegram's limits are theirs together.
        messenger.budget.share(SendTokenRepository(db, clock))
    delivery = Delivery(
        messenger, upload_limit=settings.upload_limit, local_mode=settings.telegram_local_mode
    )
    poller = Poller(
        jobs=jobs,
        media=media,
        credits=credits,
        providers=providers,
        messenger=messenger,
        delivery=delivery,
        clock=clock,
        owner=f"{socket.gethostname()}:{os.getpid()}",
        alerts=Alerts(AlertRepository(db, clock), messenger, frozenset(settings.admin_user_ids)),
        config=PollerConfig(
            work_dir=settings.data_dir,
            poll_interval=settings.poll_interval_seconds,
            job_timeout=settings.job_timeout_seconds,
            stall_polls=settings.stall_polls,
            max_concurrent=polls,
            max_deliveries=settings.max_concurrent_deliveries,
            edit_interval=settings.status_edit_interval_seconds,
            lease_seconds=settings.lease_seconds,
            download_retry_wait=settings.download_retry_seconds,
            public_url=settings.public_url,
        ),
    )
    crafter = PromptCrafter(
        http,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        model=settings.llm_model,
        timeout=settings.llm_timeout_seconds,
    )
    albums = AlbumRepository(db, clock)
    leases = LeaseRepository(db, clock)  # work one process at a time does
    studio = Studio(
        crafter=crafter,
        albums=albums,
        leases=leases,
        owner=poller.owner,
        jobs=jobs,
        users=users,
        max_running=settings.max_running_jobs_per_user,
        media=media,
        credits=credits,
        messenger=messenger,
        providers=providers,
        data_dir=settings.data_dir,
        download_limit=settings.download_limit,
        clock=clock,
    )
    updates = UpdateRepository(db, clock)
    shop = Shop(
        packs=settings.stars_packs,
        payments=PaymentRepository(db, clock),
        credits=credits,
        messenger=messenger,
        admins=frozenset(settings.admin_user_ids),
    )
    studio.after_no_credits = shop.offer_once_a_day
    account = Account(
        jobs=jobs,
        media=media,
        users=users,
        credits=credits,
        messenger=messenger,
        provider_name=providers.main.name,
        data_dir=settings.data_dir,
        admins=frozenset(settings.admin_user_ids),
        clock=clock,
        shop=shop,
    )
    return Services(
        settings=settings,
        db=db,
        http=http,
        providers=providers,
        updates=updates,
        jobs=jobs,
        studio=studio,
        account=account,
        shop=shop,
        poller=poller,
        housekeeping=Housekeeping(
            updates,
            jobs,
            albums,
            settings.data_dir,
            clock,
            leases=leases,
            owner=poller.owner,
        ),
        callbacks=Callbacks(jobs, FalSignatures(http, settings.fal_jwks_url, clock)),
        flood=FloodGuard(
            clock, limit=settings.flood_messages, window=settings.flood_window_seconds
        ),
    )


def build_application(settings: Settings, clock: Clock = time.time, role: Role = "all") -> App:
    """An Application wired to the settings; nothing is opened until it initialises.

    ``ingress`` takes updates and answers people; ``worker`` submits, polls, renders and
    delivers; ``all`` (the default, one process) does both. Any number of each may share one
    PostgreSQL database.
    """
    root = settings.telegram_api_url
    media.use_ffmpeg(settings.ffmpeg_binary)
    context_types = ContextTypes(context=StudioContext)

    async def post_init(app: App) -> None:
        services = await open_services(app, settings, clock, role)
        app.bot_data["services"] = services
        assert app.job_queue is not None
        if role != "worker":
            await app.bot.set_my_commands(handlers.bot_commands(services.shop.open))
            # Albums that were still arriving when the bot last stopped.
            app.job_queue.run_once(_albums, when=0.5, name="albums")
        if role != "ingress":
            services.callbacks.take = services.poller.take
            # Work queued or woken by another process (an ingress) starts at once, not at
            # the next tick; on SQLite there is no other process to hear from.
            await services.db.listen(
                DUE_CHANNEL, lambda: app.create_task(services.poller.tick(), name="poller-nudge")
            )
            app.job_queue.run_repeating(
                _tick,
                interval=settings.poller_tick_seconds,
                first=0.2,
                name="poller",
                job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            )
            app.job_queue.run_repeating(_housekeeping, interval=3600, first=60, name="housekeeping")
        from bot.web import WebServer

        servers: list[WebServer] = []
        if settings.public_url and not settings.telegram_webhook_url:
            # Providers call back even when Telegram is long-polled.
            servers.append(WebServer(app, settings, webhook=False))
            await servers[-1].start(settings.webhook_listen)
        serving = settings.telegram_webhook_url or settings.public_url
        if settings.metrics_listen and not (
            serving and settings.metrics_listen == settings.webhook_listen
        ):
            # /healthz and /metrics for a process without a webhook (or on a port of their own;
            # on the webhook's own address its server already answers them).
            servers.append(WebServer(app, settings, webhook=False))
            await servers[-1].start(settings.metrics_listen)
        app.bot_data["web_servers"] = servers
        log.info(
            "ready (%s): provider=%s database=%s data=%s",
            role,
            services.providers.main.name,
            settings.database_label,
            settings.data_dir,
        )

    async def post_shutdown(app: App) -> None:
        services: Services | None = app.bot_data.get("services")
        if services is None:
            return
        for web in app.bot_data.pop("web_servers", []):
            await web.stop()
        await services.poller.stop()
        await services.studio.storyboard.stop()
        await services.providers.close()
        await services.http.aclose()
        await services.db.close()

    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .local_mode(settings.telegram_local_mode)
        .context_types(context_types)
        .rate_limiter(SendBudget(settings.telegram_sends_per_second))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .get_updates_read_timeout(30)
    )
    if settings.concurrent_updates > 1:
        builder = builder.concurrent_updates(PerPersonOrder(settings.concurrent_updates))
    app: App = builder.build()
    handlers.register(app)
    return app


async def _albums(context: StudioContext) -> None:
    """Make stories of albums that were complete before the bot started."""
    await context.services.studio.storyboard.resume()


async def _housekeeping(context: StudioContext) -> None:
    """The JobQueue callback: hourly clean-up."""
    await context.services.housekeeping.run()


async def _tick(context: StudioContext) -> None:
    """The JobQueue callback: one poller tick."""
    await context.services.poller.tick()
