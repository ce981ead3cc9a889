"""Credit packs sold for Telegram Stars, as the operator lists them in ``STARS_PACKS``."""

from __future__ import annotations

from dataclasses import dataclass

# Telegram's bounds for one Stars invoice (whole Stars); a pack outside them could never be
# invoiced, so it is refused at start-up rather than when someone tries to buy it.
MIN_STARS = 1
MAX_STARS = 10_000
MAX_PACKS = 8  # buttons under one message; more would not help anyone choose


@dataclass(frozen=True)
class Pack:
    """``credits`` for ``stars``."""

    credits: int
    stars: int


def parse_packs(value: str) -> tuple[Pack, ...]:
    """``"100:50,500:200"`` → packs in the order given; empty means buying is off. Raises
    ValueError saying what is wrong."""
    packs: list[Pack] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        credits, sep, stars = item.partition(":")
        if not sep or not credits.strip().isdigit() or not stars.strip().isdigit():
            raise ValueError(f"{item!r} is not credits:stars (for example 100:50)")
        pack = Pack(int(credits), int(stars))
        if pack.credits < 1:
            raise ValueError(f"{item!r}: a pack needs at least one credit")
        if not MIN_STARS <= pack.stars <= MAX_STARS:
            raise ValueError(f"{item!r}: Telegram takes {MIN_STARS} to {MAX_STARS} Stars")
        if pack in packs:
            raise ValueError(f"{item!r} is listed twice")
        packs.append(pack)
    if len(packs) > MAX_PACKS:
        raise ValueError(f"at most {MAX_PACKS} packs")
    return tuple(packs)
