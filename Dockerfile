# syntax=docker/dockerfile:1
# One image for both process types:
#   web     the default CMD (gunicorn, same command as the Procfile)
#   worker  docker run <image> python -m workers.worker
# Pin the base images by digest in your own registry if you need reproducible builds.

# --- builder: install callwatch and its dependencies into a virtual environment ---
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# README.md is the package's long description (pyproject.toml names it).
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
# A regular (not editable) install: the final stage needs the venv only, not /src.
# pip compiles the modules to .pyc here, so the read-only image never has to.
RUN /opt/venv/bin/pip install .

# --- final: the venv, gunicorn's settings file, a non-root user ---
FROM python:3.11-slim
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
