"""Credits: a daily allowance and bought credits, reserved at submit, kept on success,
refunded on failure (each part back where it came from)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.errors import QuotaExceeded
from services.model.jobs import Job
from services.storage.repositories import Clock, LedgerRepository, Reservation


@dataclass(frozen=True)
class Allowance:
    """What a user can spend now: the rest of today's allowance, then bought credits."""

    available: int
    daily: int
    resets_at: float
    unlimited: bool
    today: int = 0  # left of today's allowance
    bought: int = 0  # bought credits left (they do not expire)


class Credits:
    """The ledger's domain verbs."""

    def __init__(
        self,
        ledger: LedgerRepository,
        clock: Clock,
        *,
        daily: int,
        zone: ZoneInfo,
        admins: frozenset[int],
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.daily = daily
        self.zone = zone
        self.admins = admins

    def day_bounds(self) -> tuple[float, float]:
        """Start of today and of tomorrow, as timestamps in the operator's zone."""
        now = datetime.fromtimestamp(self.clock(), self.zone)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        # Adding a calendar day and re-normalising handles DST days of 23 or 25 hours.
        tomorrow = (start + timedelta(days=1)).replace(tzinfo=None)
        return start.timestamp(), tomorrow.replace(tzinfo=self.zone).timestamp()

    async def allowance(self, user_id: int) -> Allowance:
        """What the user can still spend today."""
        start, end = self.day_bounds()
        if user_id in self.admins:
            return Allowance(available=10**9, daily=self.daily, resets_at=end, unlimited=True)
        today = max(0, self.daily - await self.ledger.spent_since(user_id, start))
        bought = await self.ledger.bought(user_id)
        return Allowance(
            available=today + bought,
            daily=self.daily,
            resets_at=end,
            unlimited=False,
            today=today,
            bought=bought,
        )

    async def check(self, user_id: int, cost: int) -> Allowance:
        """Raise QuotaExceeded if the user cannot afford ``cost`` now."""
        allowance = await self.allowance(user_id)
        if allowance.available < cost:
            raise QuotaExceeded(cost, allowance.available, allowance.resets_at)
        return allowance

    def reservation(self, job: Job) -> Reservation:
        """The hold for ``job``'s cost, written with the job's move to the queue (one
        transaction: see JobRepository.transition), taken from today's allowance there and,
        past it, from bought credits."""
        start, end = self.day_bounds()
        limit = None if job.user_id in self.admins else self.daily
        return Reservation(job.user_id, job.cost, since=start, limit=limit, resets_at=end)
