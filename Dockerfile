# IMC-002 IRT: slim Python, non-root, migrations on start, several uvicorn workers, health check.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IRT_WORKERS=4

WORKDIR /srv
RUN useradd --create-home --uid 10001 irt
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install -e . && mkdir -p /data && chown irt:irt /data

USER irt
ENV IRT_DATABASE_URL=sqlite:////data/irt.db
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)" || exit 1

# Behind a TLS-terminating proxy, run with -e IRT_FORWARDED_ALLOW_IPS=<the proxy's address or
# network>: `irt serve` then believes its X-Forwarded-Proto/For (and the session cookie is Secure);
# or -e IRT_SECURE_COOKIES=true. See docs/deployment.md.
# Migrate, then serve. A database without a study loaded is refused at start with a clear
# message: load one with `irt study load` (or the demo, see compose.yaml) first.
CMD ["sh", "-c", "irt db upgrade && exec irt serve --host 0.0.0.0 --port 8000 --workers ${IRT_WORKERS}"]
