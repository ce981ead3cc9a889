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
    METRICS_LISTEN=0.0.0.0:8080 \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown studio:studio /data
VOLUME ["/data"]
USER studio

# /healthz and /metrics (and the webhook and provider callbacks, when they are set up).
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["python", "-m", "bot"]
