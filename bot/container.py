"""What the composition root builds and the handlers use: the services of one running bot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from telegram.ext import Application

from bot.settings import Settings
from services.conversation.account import Account
from services.conversation.shop import Shop
from services.conversation.studio import Studio
from services.production.housekeeping import Housekeeping
from services.production.poller import Poller
from services.providers.base import ProviderSet
from services.providers.callbacks import Callbacks
from services.storage.db import Database
from services.storage.repositories import JobRepository, UpdateRepository
from services.telegram.flood import FloodGuard

App = Application[Any, Any, Any, Any, Any, Any]


@dataclass
class Services:
    """Everything the handlers and the poller use, opened in post_init."""

    settings: Settings
    db: Database
    http: httpx.AsyncClient
    providers: ProviderSet
    updates: UpdateRepository
    jobs: JobRepository
    studio: Studio
    account: Account
    shop: Shop
    poller: Poller
    housekeeping: Housekeeping
    callbacks: Callbacks
    flood: FloodGuard
