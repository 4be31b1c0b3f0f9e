# kimi-gateway: docker build -t kimi-gateway . && docker compose up -d (see docker-compose.yml)
# The base is an exact tag; pin its digest too (FROM python:...@sha256:...) where you build.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --gid 10001 gateway && useradd --create-home --uid 10001 --gid 10001 gateway \
    && mkdir /data && chown 10001:10001 /data
WORKDIR /app

# Exactly what the README installs: the hash-checked lock, nothing else.
COPY requirements.lock ./
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --require-hashes -r requirements.lock

COPY gateway.py config.example.toml ./
COPY kimi ./kimi

USER 10001:10001
ENV PATH=/opt/venv/bin:$PATH HOST=0.0.0.0 PORT=8000 STORE_PATH=/data/kimi-gateway.sqlite3
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
CMD ["python", "gateway.py"]
