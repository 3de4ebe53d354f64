# The combined image: every function behind local_router, served by gunicorn.
# Build: docker build -t rds-connector .   Run: docker run -p 8080:8080 rds-connector
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer: a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY local_router.py ./
COPY deploy/gunicorn_conf.py ./deploy/
COPY common ./common
COPY functions ./functions

# Byte-compile now: the root filesystem is read-only at run time (Kubernetes manifest).
# A fixed non-root user; /data is the local backend's folder (a volume in Kubernetes).
RUN python -m compileall -q /app \
    && useradd --no-log-init --no-create-home --uid 10001 --user-group connector \
    && mkdir -p /data \
    && chown 10001:10001 /data

USER 10001:10001

ENV CONNECTOR_DATA_DIR=/data \
    PORT=8080 \
    GUNICORN_WORKERS=2 \
    GUNICORN_WORKER_CLASS=gevent \
    GUNICORN_WORKER_CONNECTIONS=1000 \
    GUNICORN_TIMEOUT=0 \
    GUNICORN_GRACEFUL_TIMEOUT=120

EXPOSE 8080

# --preload: init (login + Token Storage registration) runs before the port is bound.
CMD ["gunicorn", "--preload", "--config", "deploy/gunicorn_conf.py", "local_router:create_app()"]
