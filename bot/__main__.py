"""``python -m bot``: validate the settings, then run the bot (long polling, or a webhook when
``TELEGRAM_WEBHOOK_URL`` is set).

``python -m bot ingress`` only takes updates and answers people; ``python -m bot worker`` only
submits, polls, renders and delivers (any number of each on one PostgreSQL database).
``python -m bot doctor`` checks the configuration, ffmpeg, the database, Telegram and the
provider key instead, and exits non-zero when something needs fixing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from pydantic import ValidationError

from bot.logs import setup_logging
from bot.settings import Settings, describe_error


def load_settings() -> Settings:
    """Settings from the environment and .env; exit 2 with one clear line if they are wrong."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except (ValidationError, ValueError) as exc:
        print(describe_error(exc), file=sys.stderr)
        raise SystemExit(2) from None


# After each answer to getUpdates, wait this long before asking again. Under a burst, Telegram
# then hands over the updates of those 50 ms in one answer instead of one answer per update;
# with 100 photos in a second, fetching them one by one took most of the bot's CPU. A quiet bot
# loses nothing: its long poll is already waiting when a message comes.
POLL_PAUSE = 0.05


def main() -> None:
    """Entry point: run the bot, or ``doctor`` to check the set-up."""
    # Users' photos and clips are private: nothing the bot writes is readable by other accounts.
    os.umask(0o077)
    settings = load_settings()
    if sys.argv[1:2] == ["doctor"]:
        setup_logging("WARNING", settings.secrets())
        from bot.doctor import run_doctor

        raise SystemExit(asyncio.run(run_doctor(settings)))
    setup_logging(settings.log_level, settings.secrets(), settings.log_format)
    from bot.application import Role, build_application
    from bot.serve import ALLOWED_UPDATES, run_webhook, run_worker

    roles: dict[str, Role] = {"ingress": "ingress", "worker": "worker"}
    if sys.argv[1:] and sys.argv[1] not in roles:
        print("usage: python -m bot [ingress | worker | doctor]", file=sys.stderr)
        raise SystemExit(2)
    role: Role = roles[sys.argv[1]] if sys.argv[1:] else "all"
    app = build_application(settings, role=role)
    if role == "worker":
        logging.getLogger(__name__).info("starting (worker)")
        run_worker(app)
        return
    if settings.telegram_webhook_url:
        logging.getLogger(__name__).info("starting (webhook on %s)", settings.webhook_listen)
        run_webhook(app, settings)
        return
    logging.getLogger(__name__).info("starting (long polling)")
    # Long polling deletes any webhook first, keeping the updates Telegram holds.
    app.run_polling(
        allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False, poll_interval=POLL_PAUSE
    )


if __name__ == "__main__":
    main()
