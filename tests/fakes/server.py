"""What every fake HTTP service shares: an aiohttp app on a free 127.0.0.1 port, started and
stopped as an async context manager, with a ``closing`` event that releases delayed answers."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from aiohttp import web


class LocalServer:
    """Subclasses build their app in ``application()``; ``root`` is where it listens."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.closing = asyncio.Event()

    def application(self) -> web.Application:
        """The routes this fake serves."""
        raise NotImplementedError

    async def start(self) -> None:
        """Start listening on a random 127.0.0.1 port."""
        self._runner = web.AppRunner(self.application(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self.closing.clear()

    async def stop(self) -> None:
        """Shut the server down; delayed answers are released first."""
        self.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the server is shutting down."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def root(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:41234``."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"
