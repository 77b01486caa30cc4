# syntax=docker/dockerfile:1
# Landform's image: the package and its locked dependencies in a virtualenv,
# built in one stage and copied into a clean slim Python, run as a non-root
# user. No compiler is needed: every locked dependency ships a manylinux wheel.
#
#   docker build -t landform:0.1.0 .
#   docker run -p 8000:8000 -v landform-data:/var/lib/landform landform:0.1.0
#
# Pinned by tag to the Python the project is tested with (3.11); bump both
# stages together.

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
RUN python -m venv /opt/landform

# Dependencies first, in their own layer: it is rebuilt only when the
# pinned list or the lock changes, not on every source edit. The lock also
# pins the dev and test extras; as constraints it installs only what is asked.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > runtime.txt \
    && /opt/landform/bin/pip install --constraint requirements.lock --requirement runtime.txt

COPY README.md ./
COPY src ./src
RUN /opt/landform/bin/pip install --no-deps --constraint requirements.lock . \
    && /opt/landform/bin/landform --help > /dev/null


FROM python:3.11.14-slim-bookworm

# pg_dump and pg_restore for `landform backup` and `landform restore` on
# PostgreSQL: the client of the servers' major version (15, as in compose and
# the manifests); it must not be older than the server.
RUN apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-client-15=15.*" \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 landform \
    && useradd --system --uid 10001 --gid landform --no-create-home \
       --home-dir /var/lib/landform --shell /usr/sbin/nologin landform \
    && install --directory --owner=10001 --group=10001 --mode=0750 /var/lib/landform

COPY --from=build /opt/landform /opt/landform

ENV PATH=/opt/landform/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANDFORM_ENV=production \
    LANDFORM_DATA_DIR=/var/lib/landform

USER 10001:10001
WORKDIR /var/lib/landform
# The embedded default keeps its SQLite database, files and generated secret
# key here; with PostgreSQL and S3 it still holds the spools and the
# workers' sockets.
VOLUME ["/var/lib/landform"]
EXPOSE 8000

# /healthz answers loopback without the ops token (LANDFORM_OPS_OPEN_NETWORKS
# keeps 127.0.0.0/8 by default); Python does the request, so no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# Workers drain on SIGTERM (LANDFORM_SHUTDOWN_GRACE_SECONDS); give
# `docker stop --time` more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["landform"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
