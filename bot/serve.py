"""Running the bot: long polling (the default), or Telegram's webhook served by uvicorn.

With a webhook, Telegram is told the URL, the secret, the update types the bot uses and how many
connections it may open; pending updates are never dropped. Stopping the bot leaves the webhook
in place, so Telegram keeps the updates that come meanwhile for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.container import App
from bot.settings import Settings
from bot.web import WebServer

log = logging.getLogger(__name__)

# pre_checkout_query: Telegram's question before a Stars payment (successful_payment and
# refunded_payment come as messages).
ALLOWED_UPDATES = ["message", "callback_query", "pre_checkout_query"]
# Telegram's default is 40; a small bot does not need more parallel requests, and each one
# only queues an update.
WEBHOOK_CONNECTIONS = 40


async def start_webhook(app: App, settings: Settings) -> WebServer:
    """Initialise the bot, serve the webhook, then tell Telegram where it is."""
    assert settings.telegram_webhook_url is not None
    assert settings.telegram_webhook_secret is not None
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()
    web = WebServer(app, settings, webhook=True)
    await web.start(settings.webhook_listen)
    await app.bot.set_webhook(
        url=settings.telegram_webhook_url,
        secret_token=settings.telegram_webhook_secret.get_secret_value(),
        allowed_updates=ALLOWED_UPDATES,
        max_connections=WEBHOOK_CONNECTIONS,
        drop_pending_updates=False,
    )
    log.info("webhook set; Telegram calls %s", settings.telegram_webhook_url)
    return web


async def stop_webhook(app: App, web: WebServer) -> None:
    """Stop answering, let the updates in hand finish, close everything."""
    await web.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
    if app.post_shutdown is not None:
        await app.post_shutdown(app)


def run_webhook(app: App, settings: Settings) -> None:
    """Serve the webhook until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        web = await start_webhook(app, settings)
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await stop_webhook(app, web)

    asyncio.run(main())


def run_worker(app: App) -> None:
    """A worker: no updates, only the job queue's poller and housekeeping, until a signal."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await app.initialize()
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await app.stop()
            await app.shutdown()
            if app.post_shutdown is not None:
                await app.post_shutdown(app)

    asyncio.run(main())
