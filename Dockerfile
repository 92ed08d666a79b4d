# iam-bot: `iam-bot serve` on $PORT (HTTP) or by Socket Mode when SLACK_APP_TOKEN is set.
# Configure it with environment variables at run time (README, "Settings"); nothing secret is baked in.
# Release step before a new version serves: `docker run --rm --env-file ... IMAGE iam-bot migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY models ./models
RUN pip install --no-cache-dir . \
    && rm -rf /src \
    && groupadd --system --gid 10001 iambot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --create-home --shell /usr/sbin/nologin iambot

# A non-root user; /data is its working directory (a local SQLite file lands there if no
# DATABASE_URL is given; use PostgreSQL for anything shared).
USER 10001:10001
WORKDIR /data

EXPOSE 3000
# slim has no curl: ask /healthz with Python's urllib (a 503 raises, so the check fails).
# Socket Mode serves no HTTP, so there is nothing to ask there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0) if os.environ.get('SLACK_APP_TOKEN') else urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

CMD ["iam-bot", "serve"]
