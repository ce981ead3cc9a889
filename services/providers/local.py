"""The local studio: ffmpeg effects behind the provider interface, no key needed.

It keeps its own state on disk (a folder per job holding the spec, the output or an error), so
a restart loses nothing: a job whose render was interrupted is simply rendered again, which is
safe here because a local render costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
import uuid
from pathlib import Path

from services.errors import MediaError, ProviderPermanent
from services.media import effects as media_effects
from services.media import ffmpeg as media
from services.providers.base import JobSpec, ProviderState, ProviderStatus, Submission

log = logging.getLogger(__name__)

SCHEME = "studio://"


class LocalStudio:
    """Renders with ffmpeg on this machine, a few jobs at a time."""

    name = "local"

    def __init__(self, data_dir: Path, *, height: int = 720, parallel: int = 1) -> None:
        self.root = data_dir / "studio"
        self.height = height
        # ffmpeg uses every core; running renders one by one keeps each one quick.
        self._slots = asyncio.Semaphore(parallel)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._progress: dict[str, float] = {}
        # Renders holding a slot, and when each began (monotonic clock).
        self._started: dict[str, float] = {}

    def _job_dir(self, external_id: str) -> Path:
        if not external_id.isalnum():
            raise ProviderPermanent("malformed studio job id")
        return self.root / external_id

    def _resolve(self, url: str) -> Path:
        """Map a ``studio://`` URL to a file inside the studio folder, refusing escapes."""
        if not url.startswith(SCHEME):
            raise ProviderPermanent(f"not a studio URL: {url[:40]}")
        path = (self.root / url.removeprefix(SCHEME)).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ProviderPermanent("studio URL outside the studio folder")
        return path

    async def upload(self, path: Path, content_type: str) -> str:
        """Copy the input into the studio's folder."""
        uploads = self.root / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        suffix = path.suffix.lower() if path.suffix.lower().isascii() else ""
        name = f"{uuid.uuid4().hex}{suffix[:8]}"
        await asyncio.to_thread(shutil.copyfile, path, uploads / name)
        return f"{SCHEME}uploads/{name}"

    async def submit(self, spec: JobSpec) -> Submission:
        """Write the spec and start rendering."""
        external_id = uuid.uuid4().hex
        folder = self._job_dir(external_id)
        folder.mkdir(parents=True)
        payload = {
            "endpoint": spec.model.endpoint,
            "prompt": spec.prompt,
            "inputs": spec.inputs,
            "duration": spec.duration,
            "aspect": spec.aspect,
            "options": spec.options,
        }
        (folder / "spec.json").write_text(json.dumps(payload), encoding="utf-8")
        self._start(external_id)
        return Submission(external_id=external_id)

    def _start(self, external_id: str) -> None:
        self._progress[external_id] = 0.0
        task = asyncio.create_task(self._render(external_id), name=f"studio-{external_id}")
        self._tasks[external_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(external_id, None))

    async def _render(self, external_id: str) -> None:
        folder = self._job_dir(external_id)
        spec = json.loads((folder / "spec.json").read_text(encoding="utf-8"))

        def on_progress(fraction: float) -> None:
            self._progress[external_id] = fraction

        async with self._slots:
            self._started[external_id] = time.monotonic()
            try:
                # Rendered under another name: "output.mp4" appears only once it passed.
                render = folder / "render.mp4"
                await self._run(spec, render, on_progress)
                await self._check(spec, render)
                render.replace(folder / "output.mp4")
            except MediaError as exc:
                log.warning("studio job %s failed: %s", external_id, exc)
                (folder / "error.txt").write_text(str(exc)[:500], encoding="utf-8")
            finally:
                self._started.pop(external_id, None)

    async def _run(
        self, spec: dict[str, object], output: Path, on_progress: media.Progress
    ) -> None:
        endpoint = spec["endpoint"]
        inputs = spec["inputs"]
        options = spec["options"]
        assert isinstance(inputs, dict) and isinstance(options, dict)
        if endpoint == "animate":
            await media.animate_photo(
                self._resolve(str(inputs["image"])),
                output,
                motion=str(options.get("motion", "zoom_in")),
                duration=float(str(spec["duration"])),
                aspect=str(spec["aspect"]),
                height=self.height,
                on_progress=on_progress,
            )
        elif endpoint == "extend":
            await media_effects.extend_clip(
                self._resolve(str(inputs["video"])),
                output,
                seconds=float(str(spec["duration"])),
                effect=str(options.get("effect", "slow_tail")),
                on_progress=on_progress,
            )
        elif endpoint == "music":
            track = output.with_name("soundtrack.m4a")
            video = self._resolve(str(inputs["video"]))
            length = (await media.probe(video)).duration or 5.0
            await media_effects.generate_soundtrack(
                track, seconds=length, mood=str(options.get("mood", "calm"))
            )
            await media_effects.add_soundtrack(video, track, output, on_progress=on_progress)
        elif endpoint == "mix":
            await media_effects.add_soundtrack(
                self._resolve(str(inputs["video"])),
                self._resolve(str(inputs["audio"])),
                output,
                on_progress=on_progress,
            )
        else:
            raise MediaError(f"the studio has no effect called {endpoint!r}")

    async def _check(self, spec: dict[str, object], output: Path) -> None:
        """Refuse a render that is not what was asked for, before anyone is told "Done" or
        charged: too short (an extend that did not grow), no sound where sound was added, or
        a picture of one flat colour. The output is removed, so the job fails with a refund."""
        try:
            info = await media.probe(output)
            inputs = spec["inputs"]
            assert isinstance(inputs, dict)
            seconds = float(str(spec["duration"]))
            source = None
            if "video" in inputs:
                source = (await media.probe(self._resolve(str(inputs["video"])))).duration
            expected = {
                "animate": seconds,
                "extend": (source or 0.0) + seconds,
            }.get(str(spec["endpoint"]), source or 0.0)
            problem = None
            if not info.has_video or not info.duration:
                problem = "no video in the result"
            elif info.duration < expected * 0.9 - 0.2:
                problem = f"the result lasts {info.duration:.1f}s, not {expected:.1f}s"
            elif spec["endpoint"] in ("music", "mix") and not info.has_audio:
                problem = "the result has no sound"
            elif await media.looks_blank(output, info.duration):
                problem = "the result is one flat colour"
        except MediaError as exc:
            problem = f"the result does not read back: {exc}"
        if problem is not None:
            output.unlink(missing_ok=True)
            raise MediaError(f"result check failed: {problem}")

    async def poll(self, submission: Submission) -> ProviderStatus:
        """Report from the job's folder and the running render."""
        external_id = submission.external_id
        folder = self._job_dir(external_id)
        if (folder / "output.mp4").exists():
            return ProviderStatus(
                ProviderState.COMPLETED,
                "completed",
                progress=1.0,
                outputs=(f"{SCHEME}{external_id}/output.mp4",),
            )
        if (folder / "error.txt").exists():
            # ffmpeg's own words ("[Parsed_aresample_6 @ 0x55…]") were logged when the render
            # failed; the user gets the plain "could not be processed" in their language.
            raise ProviderPermanent("the studio could not render this job", reason="failed_media")
        if (folder / "canceled").exists():
            return ProviderStatus(ProviderState.CANCELED, "canceled")
        if not (folder / "spec.json").exists():
            return ProviderStatus(ProviderState.FAILED, "failed", error="unknown studio job")
        if external_id not in self._tasks:
            log.info("studio job %s was interrupted; rendering it again", external_id)
            self._start(external_id)
        if external_id not in self._started:
            # Waiting behind another render is not a stall: the status moves while the render
            # ahead moves, and only a render that stops moving (its ffmpeg is killed) stalls.
            ahead = ",".join(f"{self._progress.get(j, 0.0):.2f}" for j in self._started)
            return ProviderStatus(ProviderState.QUEUED, f"waiting({ahead})", running_for=0.0)
        return ProviderStatus(
            ProviderState.RUNNING,
            "processing",
            progress=self._progress.get(external_id),
            running_for=time.monotonic() - self._started[external_id],
        )

    async def cancel(self, submission: Submission) -> bool:
        """Stop the render."""
        folder = self._job_dir(submission.external_id)
        if folder.exists():
            (folder / "canceled").touch()
        task = self._tasks.get(submission.external_id)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def fetch_output(self, url: str, dest: Path, max_bytes: int) -> None:
        """Copy the rendered file out of the studio folder."""
        source = self._resolve(url)
        if not source.is_file():
            raise ProviderPermanent("the studio output is gone")
        if source.stat().st_size > max_bytes:
            raise ProviderPermanent("the studio output is larger than allowed")
        partial = dest.with_name(dest.name + ".part")
        await asyncio.to_thread(shutil.copyfile, source, partial)
        partial.replace(dest)

    async def discard(self, submission: Submission) -> None:
        """Stop the job's render if it is still going (its slot is free at once) and remove
        its folder: a job that ended for any reason never keeps ffmpeg running."""
        task = self._tasks.get(submission.external_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        folder = self._job_dir(submission.external_id)
        await asyncio.to_thread(shutil.rmtree, folder, True)

    async def close(self) -> None:
        """Stop every render; they restart from disk next time."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
