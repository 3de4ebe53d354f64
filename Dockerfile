# The combined image: every function behind local_router, served by gunicorn.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY pyproject.toml local_router.py ./
COPY common ./common
COPY functions ./functions
RUN useradd --create-home --uid 10001 connector && mkdir -p /data && chown connector /data
USER 10001

ENV CONNECTOR_DATA_DIR=/data GUNICORN_WORKERS=2 GUNICORN_THREADS=8 GUNICORN_TIMEOUT=0
EXPOSE 8080
CMD ["sh", "-c", "exec gunicorn --preload --bind 0.0.0.0:${PORT:-8080} --workers ${GUNICORN_WORKERS} --threads ${GUNICORN_THREADS} --timeout ${GUNICORN_TIMEOUT} 'local_router:create_app()'"]
