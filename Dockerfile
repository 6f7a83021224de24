# syntax=docker/dockerfile:1
#
# Production image of nurture: one image for every role (web, worker, beat, migrate, flower);
# docker-compose.yml picks the role with `command:`. The default command serves the web app.
#
#   docker build -t nurture .
#   docker run --rm -p 127.0.0.1:8000:8000 -e NURTURE_DATABASE_URL=... nurture

# --- build: install the project and its dependencies into a self-contained virtualenv -------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what `pip install .` reads: pyproject.toml names README.md as the readme.
COPY pyproject.toml README.md ./
COPY nurture ./nurture
COPY workers ./workers
# The `ops` extra adds Flower, the Celery dashboard of the compose topology.
RUN pip install ".[ops]"

# --- runtime: the virtualenv, config and templates; nothing else --------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NURTURE_CONFIG_DIR=/app/config \
    NURTURE_TEMPLATES_DIR=/app/templates \
    NURTURE_VAR_DIR=/app/var

RUN groupadd --system --gid 10001 nurture \
    && useradd --system --uid 10001 --gid nurture --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin nurture

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Config and templates stay owned by root: the service reads them and never writes them.
COPY config ./config
COPY templates ./templates
# var/ is the only writable place (beat's schedule file, the secret-key file when
# NURTURE_SECRET_KEY is unset). A named volume mounted here inherits this ownership.
RUN mkdir -p /app/var && chown nurture:nurture /app/var

USER nurture:nurture

EXPOSE 8000

# No HEALTHCHECK here: the same image runs beat, migrate and flower, which serve no /healthz.
# docker-compose.yml gives each long-running role its own check.
CMD ["nurture", "serve", "--host", "0.0.0.0", "--port", "8000"]
