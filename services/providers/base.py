"""The interface every video backend implements (local studio, muapi, fal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from services.providers.catalogue import Model


class ProviderState(StrEnum):
    """A provider's job status, normalised."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class JobSpec:
    """Everything a provider needs to run one job."""

    model: Model
    prompt: str
    inputs: dict[str, str]  # role ("image", "video", "audio") -> provider-side URL
    duration: int
    aspect: str
    options: dict[str, Any] = field(default_factory=dict)
    # Where the provider should report completion (our own public URL), if anywhere.
    callback_url: str | None = None


@dataclass(frozen=True)
class Submission:
    """What a provider returned for a submit; stored with the job."""

    external_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderStatus:
    """One poll's answer."""

    state: ProviderState
    raw: str
    progress: float | None = None  # 0..1
    queue_position: int | None = None
    outputs: tuple[str, ...] = ()
    error: str | None = None
    # Failures that the provider billed us for (some 422s) are still refunded to the user.
    billed: bool = False
    # Seconds the work itself has been running, where the provider knows (the local studio).
    running_for: float | None = None

    @property
    def signature(self) -> str:
        """What must change between polls for the job not to count as stalled."""
        pct = "" if self.progress is None else f"{self.progress:.3f}"
        # The normalised state leads, so the status line can tell "waiting" from "working".
        return f"{self.state.value}:{self.raw}|{pct}|{self.queue_position}"


class Provider(Protocol):
    """A video backend. Errors are ``ProviderTransient`` or ``ProviderPermanent``."""

    name: str

    async def upload(self, path: Path, content_type: str) -> str:
        """Put a local file where the provider can read it; return its URL there."""
        ...

    async def submit(self, spec: JobSpec) -> Submission:
        """Start a job."""
        ...

    async def poll(self, submission: Submission) -> ProviderStatus:
        """Ask how a job is doing."""
        ...

    async def cancel(self, submission: Submission) -> bool:
        """Ask the provider to stop a job (best effort)."""
        ...

    async def fetch_output(self, url: str, dest: Path, max_bytes: int) -> None:
        """Stream one output to ``dest`` (never whole in memory)."""
        ...

    async def discard(self, submission: Submission) -> None:
        """Forget a finished job's leftovers (local files); a no-op for remote providers."""
        ...

    async def close(self) -> None:
        """Release clients and background work."""
        ...


@dataclass
class ProviderSet:
    """The provider in use, and the local studio for what is always done here (mixing a
    user's own audio costs nothing and needs no AI model)."""

    main: Provider
    local: Provider

    def get(self, name: str) -> Provider:
        """The provider a job was made for."""
        return self.local if name == self.local.name else self.main

    async def close(self) -> None:
        """Close both (once if they are the same)."""
        await self.main.close()
        if self.local is not self.main:
            await self.local.close()
