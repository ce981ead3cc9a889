# Pinned to Debian 12 (bookworm): its ffmpeg 5.1 is one of the two builds the tests run on.
# An unpinned tag would move to a newer Debian, and its ffmpeg, under the image.
FROM python:3.11-slim-bookworm

# The system ffmpeg (with ffprobe) is preferred over the one bundled in the wheel;
# `python -m bot doctor` runs every filter graph the bot uses against it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 studio
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY services ./services
RUN pip install --no-cache-dir .

ENV DATA_DIR=/data \
    DATABASE_URL=sqlite:////data/bot.db \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown studio:studio /data
VOLUME ["/data"]
USER studio

# The webhook, /healthz and /metrics, when TELEGRAM_WEBHOOK_URL or METRICS_LISTEN is set.
EXPOSE 8080
CMD ["python", "-m", "bot"]
