"""Orders, payments and refunds of credit packs bought with Telegram Stars.

Telegram may deliver a payment twice (a redelivered update, two processes, a restart between
crediting and marking the update done), so a payment is written once per charge id, in the
same transaction as its order's state and the ledger row that adds the credits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.storage.db import LOCK_CREDITS, Database, Row
from services.storage.repositories import BOUGHT_BALANCE, Clock


@dataclass(frozen=True)
class Order:
    """A pack a person chose; its id is the invoice's payload."""

    id: int
    user_id: int
    chat_id: int
    credits: int
    stars: int
    state: str  # open, paid, refunded
    created_at: float


@dataclass(frozen=True)
class Payment:
    """A payment Telegram confirmed."""

    charge_id: str
    order_id: int | None
    user_id: int
    stars: int
    credits: int
    paid_at: float
    refunded_at: float | None
    taken_back: int | None  # credits removed at the refund (the rest had been spent)


@dataclass(frozen=True)
class Refund:
    """What reconciling a refund did: ``taken_back`` of the payment's credits were removed
    (the others had been spent); ``already`` if it had been reconciled before."""

    payment: Payment
    taken_back: int
    already: bool

    @property
    def spent(self) -> int:
        return self.payment.credits - self.taken_back


@dataclass(frozen=True)
class Sales:
    """Stars received (less refunds) and packs sold, since a moment and in all."""

    stars_today: int
    stars_total: int
    packs_today: int
    packs_total: int
    refunded_total: int


def _order(row: Row) -> Order:
    return Order(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        chat_id=int(row["chat_id"]),
        credits=int(row["credits"]),
        stars=int(row["stars"]),
        state=str(row["state"]),
        created_at=float(row["created_at"]),
    )


def _payment(row: Row) -> Payment:
    return Payment(
        charge_id=str(row["charge_id"]),
        order_id=None if row["order_id"] is None else int(row["order_id"]),
        user_id=int(row["user_id"]),
        stars=int(row["stars"]),
        credits=int(row["credits"]),
        paid_at=float(row["paid_at"]),
        refunded_at=None if row["refunded_at"] is None else float(row["refunded_at"]),
        taken_back=None if row["taken_back"] is None else int(row["taken_back"]),
    )


class PaymentRepository:
    """Orders, payments, refunds and pack offers."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def open_order(self, user_id: int, chat_id: int, credits: int, stars: int) -> Order:
        """A new unpaid order for a pack."""
        now = self.clock()
        order_id = await self.db.insert(
            "INSERT INTO orders (user_id, chat_id, credits, stars, state, created_at) "
            "VALUES (?, ?, ?, ?, 'open', ?)",
            (user_id, chat_id, credits, stars, now),
        )
        return Order(order_id, user_id, chat_id, credits, stars, "open", now)

    async def order(self, order_id: int) -> Order | None:
        row = await self.db.fetchone("SELECT * FROM orders WHERE id = ?", (order_id,))
        return _order(row) if row else None

    async def payment(self, charge_id: str) -> Payment | None:
        row = await self.db.fetchone("SELECT * FROM payments WHERE charge_id = ?", (charge_id,))
        return _payment(row) if row else None

    async def record(
        self, charge_id: str, order: Order | None, user_id: int, stars: int, credits: int
    ) -> bool:
        """Write a confirmed payment and add its credits, all in one transaction; False (and
        nothing changed) if this charge was recorded before."""
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.lock(LOCK_CREDITS, user_id)
            added = await tx.execute(
                "INSERT INTO payments (charge_id, order_id, user_id, stars, credits, paid_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (charge_id, order.id if order else None, user_id, stars, credits, now),
            )
            if added != 1:
                return False
            if order is not None:
                await tx.execute(
                    "UPDATE orders SET state = 'paid' WHERE id = ? AND state = 'open'",
                    (order.id,),
                )
            if credits:
                await tx.execute(
                    "INSERT INTO ledger (user_id, job_id, entry, amount, bought, reason, "
                    "created_at) VALUES (?, NULL, 'grant', ?, 0, ?, ?)",
                    (user_id, credits, f"stars:{charge_id}", now),
                )
        return True

    async def to_thank(self, charge_id: str) -> bool:
        """True once per payment: whoever gets it says thank you. A payment redelivered after
        a stop between crediting and thanking is thanked then, and never twice."""
        changed = await self.db.execute(
            "UPDATE payments SET thanked = 1 WHERE charge_id = ? AND thanked = 0", (charge_id,)
        )
        return changed == 1

    async def refund(self, charge_id: str) -> Refund | None:
        """Reconcile a refund: take back the payment's credits that are still unspent, once;
        None if there is no such payment."""
        payment = await self.payment(charge_id)
        if payment is None:
            return None
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.lock(LOCK_CREDITS, payment.user_id)
            row = await tx.fetchone("SELECT * FROM payments WHERE charge_id = ?", (charge_id,))
            assert row is not None
            current = _payment(row)
            if current.refunded_at is not None:
                return Refund(current, current.taken_back or 0, already=True)
            row = await tx.fetchone(BOUGHT_BALANCE, (payment.user_id,))
            balance = max(0, int(row["n"]) if row else 0)
            taken = min(current.credits, balance)
            await tx.execute(
                "UPDATE payments SET refunded_at = ?, taken_back = ? WHERE charge_id = ?",
                (now, taken, charge_id),
            )
            if current.order_id is not None:
                await tx.execute(
                    "UPDATE orders SET state = 'refunded' WHERE id = ?", (current.order_id,)
                )
            if taken:
                await tx.execute(
                    "INSERT INTO ledger (user_id, job_id, entry, amount, bought, reason, "
                    "created_at) VALUES (?, NULL, 'grant', ?, 0, ?, ?)",
                    (payment.user_id, -taken, f"refund:{charge_id}", now),
                )
        done = replace(current, refunded_at=now, taken_back=taken)
        return Refund(done, taken, already=False)

    async def claim_offer(self, user_id: int, day_start: float) -> bool:
        """True (and noted) if the person has not been offered packs since ``day_start``."""
        now = self.clock()
        changed = await self.db.execute(
            "INSERT INTO pack_offers (user_id, offered_at) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET offered_at = excluded.offered_at "
            "WHERE pack_offers.offered_at < ?",
            (user_id, now, day_start),
        )
        return changed == 1

    async def sales(self, since: float) -> Sales:
        """Stars received and packs sold (refunded ones not counted), today and in all."""
        row = await self.db.fetchone(
            "SELECT "
            "COALESCE(SUM(CASE WHEN refunded_at IS NULL AND paid_at >= ? THEN stars END), 0) "
            "AS stars_today, "
            "COALESCE(SUM(CASE WHEN refunded_at IS NULL THEN stars END), 0) AS stars_total, "
            "COALESCE(SUM(CASE WHEN refunded_at IS NULL AND paid_at >= ? THEN 1 END), 0) "
            "AS packs_today, "
            "COALESCE(SUM(CASE WHEN refunded_at IS NULL THEN 1 END), 0) AS packs_total, "
            "COALESCE(SUM(CASE WHEN refunded_at IS NOT NULL THEN stars END), 0) AS refunded "
            "FROM payments",
            (since, since),
        )
        assert row is not None
        return Sales(
            stars_today=int(row["stars_today"]),
            stars_total=int(row["stars_total"]),
            packs_today=int(row["packs_today"]),
            packs_total=int(row["packs_total"]),
            refunded_total=int(row["refunded"]),
        )
