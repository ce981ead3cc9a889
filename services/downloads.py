"""Streaming downloads to disk: results can be hundreds of megabytes."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.errors import TransferError

CHUNK = 256 * 1024


async def stream_to_file(client: httpx.AsyncClient, url: str, dest: Path, max_bytes: int) -> int:
    """GET ``url`` into ``dest`` chunk by chunk, refusing more than ``max_bytes``.

    Errors never include the URL: Telegram's carry the bot token.
    """
    written = 0
    timeout = httpx.Timeout(120.0, connect=10.0)
    try:
        async with client.stream("GET", url, timeout=timeout) as response:
            if response.status_code != 200:
                raise TransferError(
                    f"download failed: HTTP {response.status_code}",
                    kind="http",
                    status=response.status_code,
                )
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise TransferError("file is too big", kind="too_large")
            with dest.open("wb") as out:
                async for chunk in response.aiter_bytes(CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise TransferError("file is too big", kind="too_large")
                    out.write(chunk)
            if declared and written != declared:
                raise TransferError("download was cut off", kind="network")
    except httpx.TimeoutException as exc:
        raise TransferError("download timed out", kind="timeout") from exc
    except httpx.TransportError as exc:
        raise TransferError(f"download failed ({type(exc).__name__})", kind="network") from exc
    return written
