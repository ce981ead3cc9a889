"""The process's own measurements, for ``/metrics``: what was sent to providers and how it
ended, how long a job's turn takes, and how long sends waited for Telegram's limits.

prometheus-client's default registry: one per process, which is what Prometheus scrapes.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SUBMITS = Counter(
    "studio_submits_total", "Requests accepted by a video provider", ["provider", "kind"]
)
FAILURES = Counter(
    "studio_job_failures_total", "Jobs that ended without a video, by reason", ["reason"]
)
JOB_TURN = Histogram(
    "studio_poll_turn_seconds",
    "How long one job's turn in the poller took (a poll, a download, a delivery)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SEND_WAIT = Histogram(
    "studio_send_wait_seconds",
    "How long a send to Telegram waited for the chat's and the bot's limits",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
