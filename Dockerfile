# opchain's image: every role of the CLI (`docker run IMAGE run|collect|worker|serve|login ...`).
# Build from the repository root: docker build -t opchain:latest .

# Build stage: the wheel of this checkout, installed with its dependencies into a venv that
# the final stage copies whole (no compiler needed: every dependency ships binary wheels).
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/opchain
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/opchain/bin/pip install --no-cache-dir /wheels/opchain-*.whl

# Final stage: the venv, a non-root user and the data directory; nothing of the build.
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="opchain" \
      org.opencontainers.image.description="Options-market data pipeline for Indian index options" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
# /data belongs to opchain before it becomes a volume: a new named volume starts with the
# image's owner and mode, so the non-root process can write it. secrets/ holds the Kite login.
RUN groupadd --system --gid 10001 opchain \
    && useradd --system --uid 10001 --gid opchain --home-dir /home/opchain --create-home \
       --shell /usr/sbin/nologin opchain \
    && install -d -o opchain -g opchain -m 0755 /data \
    && install -d -o opchain -g opchain -m 0700 /data/secrets
COPY --from=build /opt/opchain /opt/opchain
ENV PATH=/opt/opchain/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/opchain \
    OPCHAIN_DATA_DIR=/data \
    OPCHAIN_API_HOST=0.0.0.0 \
    OPCHAIN_API_PORT=8000
# DL3064 flags the name (it holds "TOKEN"); the value is a path, not a secret: `opchain login`
# writes the day's token there, in the volume, so every role of the stack reads the same one.
# hadolint ignore=DL3064
ENV OPCHAIN_KITE_TOKEN_FILE=/data/secrets/kite_token.json
WORKDIR /home/opchain
VOLUME /data
EXPOSE 8000
USER 10001:10001
# The API's /health: 200 when ok or degraded, 503 when down (urlopen raises: exit 1), and no
# answer at all raises too. Roles without the API (collect, worker) replace it (compose.yaml).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as r; sys.exit(r.urlopen('http://127.0.0.1:8000/health', timeout=5).status != 200)"]
ENTRYPOINT ["opchain"]
CMD ["run"]
