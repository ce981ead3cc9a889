"""Periodic clean-up: the tables and folders that would otherwise only grow."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

from services.model.jobs import JobState
from services.storage.repositories import (
    AlbumRepository,
    Clock,
    JobRepository,
    LeaseRepository,
    UpdateRepository,
)

log = logging.getLogger(__name__)

UPDATE_MEMORY = 2 * 86_400  # Telegram redelivers for hours, not days
INPUT_MEMORY = 7 * 86_400  # inputs stay for "Try again" for a week
OUTPUT_MEMORY = 86_400  # delivered files stay a day for "As file"
LEASE, LEASE_TIME = "housekeeping", 2 * 3_600.0  # longer than the hour between passes
WORK_MEMORY = 3_600  # an ended job's work folder, in case a late step still reads it


class Housekeeping:
    """Forgets old update ids and removes inputs no job needs any more."""

    def __init__(
        self,
        updates: UpdateRepository,
        jobs: JobRepository,
        albums: AlbumRepository,
        data_dir: Path,
        clock: Clock,
        leases: LeaseRepository | None = None,
        owner: str = "",
    ) -> None:
        self.updates = updates
        self.jobs = jobs
        self.albums = albums
        self.leases = leases
        self.owner = owner
        self.inbound = data_dir / "inbound"
        self.outputs = data_dir / "outputs"
        self.work = data_dir / "jobs"
        self.clock = clock

    async def run(self) -> None:
        """One pass; safe to call at any time. With several processes on one database, the one
        holding the lease does it."""
        if self.leases is not None and not await self.leases.take(LEASE, self.owner, LEASE_TIME):
            return
        now = self.clock()
        pruned = await self.updates.prune(now - UPDATE_MEMORY)
        await self.albums.prune(now - INPUT_MEMORY)
        keep = await self.jobs.active_inputs()
        removed = await asyncio.to_thread(self._remove_old, self.inbound, now - INPUT_MEMORY, keep)
        removed += await asyncio.to_thread(
            self._remove_old, self.outputs, now - OUTPUT_MEMORY, set()
        )
        removed += await self._remove_ended_work(now - WORK_MEMORY)
        if pruned or removed:
            log.info("housekeeping: %d update ids forgotten, %d inputs removed", pruned, removed)

    async def _remove_ended_work(self, before: float) -> int:
        """Work folders of jobs that ended: a story canceled while its shots were made, a job
        whose clean-up a stop cut short. A folder of a job still going is never touched."""
        if not self.work.is_dir():
            return 0
        removed = 0
        for folder in self.work.iterdir():
            if not folder.name.isdigit() or folder.stat().st_mtime >= min(before, time.time()):
                continue
            job = await self.jobs.get(int(folder.name))
            if job is not None and (job.active or job.state == JobState.DRAFT):
                continue
            await asyncio.to_thread(shutil.rmtree, folder, True)
            removed += 1
        return removed

    @staticmethod
    def _remove_old(folder: Path, before: float, keep: set[str]) -> int:
        if not folder.is_dir():
            return 0
        removed = 0
        for path in folder.iterdir():
            # File times are wall-clock; the injected clock only decides the cut-off.
            if str(path) in keep or path.stat().st_mtime >= min(before, time.time()):
                continue
            path.unlink(missing_ok=True)
            removed += 1
        return removed
