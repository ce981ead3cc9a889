"""Run every benchmark, one after another, and refresh bench/README.md and bench/results/.

python -m bench          # the full sizes (about 23 minutes on 2 cores)
python -m bench --quick  # smaller sizes, for a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from bench import burst, crowd, delivery_memory, idle, polling, reencode, scale, stitch


async def run_all(quick: bool) -> None:
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("polling", lambda: polling.run([100, 300] if quick else [100, 1000, 10000],
                                        baseline_cap=5 if quick else 25)),
        ("delivery_memory", lambda: delivery_memory.run(quick)),
        ("reencode", lambda: reencode.run(quick)),
        ("stitch", lambda: stitch.run(quick)),
        ("burst", lambda: burst.run(30 if quick else 100)),
        ("crowd", lambda: crowd.run([30] if quick else [30, 100])),
        ("idle", lambda: idle.run(quick)),
        ("scale", lambda: scale.run(quick)),
    ]  # fmt: skip
    for name, step in steps:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        await step()
        print(f"   {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run every benchmark.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(run_all(args.quick))
    print(f"all done in {time.monotonic() - started:.0f} s; see bench/README.md", flush=True)


if __name__ == "__main__":
    main()
