# syntax=docker/dockerfile:1
# One image for both process types:
#   web     the default CMD (gunicorn, same command as the Procfile)
#   worker  docker run <image> python -m workers.worker
# Reproducible: the base image is pinned by digest (below) and every Python dependency
# by version and hash (requirements.lock, made by uv from pyproject.toml).
# To refresh the base: `docker buildx imagetools inspect python:3.11-slim` (or
# `crane digest python:3.11-slim`) prints the tag's current index digest; put it in
# both FROM lines. The digest here is the python:3.11-slim index (all platforms) as
# Docker's official images published it on 2026-08-05 (Python 3.11.15, Debian trixie).

# --- builder: install callwatch and its dependencies into a virtual environment ---
FROM python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# The dependencies first, exactly as locked (a changed hash fails the build), in a layer
# of their own that a code change does not rebuild.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock
# README.md is the package's long description (pyproject.toml names it).
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
# Then callwatch itself, adding nothing: no dependency resolution, and the locked
# setuptools builds it (no build isolation, so nothing unpinned is fetched).
# A regular (not editable) install: the final stage needs the venv only, not /src.
# pip compiles the modules to .pyc here, so the read-only image never has to.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
 && /opt/venv/bin/pip check

# --- final: the venv, gunicorn's settings file, a non-root user ---
FROM python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PORT=8000
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it (k8s/ uses 10001).
RUN groupadd --system --gid 10001 callwatch \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin callwatch
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py ./
USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK: the worker runs this image too and has no HTTP port; Kubernetes
# probes /healthz and /readyz on the web pods instead (k8s/web-deployment.yaml).
CMD ["gunicorn", "--config", "gunicorn.conf.py", "workers.wsgi:app"]
