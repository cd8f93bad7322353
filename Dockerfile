# jenkins-backup container image: the backup sidecar for the Jenkins Operator (drop-in for its
# backup-pvc image) and for standalone use (Helm chart sidecar, init container).
#
#   docker build -t jenkins-backup .        (or: podman build -t jenkins-backup .)
#
# Builds with Docker's classic builder, BuildKit and Podman alike (no syntax directive, no
# BuildKit-only flags). PYTHON_IMAGE may be any Debian-based image with python3 and its venv
# module (CI bootstraps one from Debian packages: .ci/image-check.sh).
#
# Runs as UID 1000 by default and under any arbitrary UID with GID 0 (OpenShift), with a
# read-only root file system and no writable /tmp: jenkins-backup writes only to JENKINS_HOME
# and the repository.

ARG PYTHON_IMAGE=python:3.12-slim

# --- build: install the package and its cloud extras into a self-contained virtualenv ---------
FROM ${PYTHON_IMAGE} AS build

# Optional: a CA bundle pip should trust (a TLS-intercepting proxy's; CI passes the system one).
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/jenkins-backup

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY image/bin ./bin
# pip and setuptools only install: the runtime virtualenv does without them.
RUN /opt/jenkins-backup/bin/pip install ".[s3,gcs,azure]" \
    && /opt/jenkins-backup/bin/pip uninstall --yes pip setuptools wheel \
    && rm -f /opt/jenkins-backup/bin/activate* /opt/jenkins-backup/bin/Activate.ps1 \
    && /opt/jenkins-backup/bin/python -m compileall -q /opt/jenkins-backup/lib \
    && /opt/jenkins-backup/bin/jenkins-backup --help >/dev/null \
    && chmod 0755 bin/backup.sh bin/restore.sh bin/get-latest.sh

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="jenkins-backup" \
      org.opencontainers.image.description="Incremental, deduplicated backup and restore provider for Jenkins on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"

# tini as PID 1: forwards SIGTERM to jenkins-backup and reaps orphaned children. No apt lists,
# caches or logs stay in the layer, whatever the base left there.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old \
              /var/log/apt /var/log/dpkg.log

# User 1000 like the backup-pvc image; primary group 0 so that an arbitrary UID (which always
# runs with GID 0 on OpenShift) can use HOME as well.
RUN useradd --uid 1000 --gid 0 --home-dir /home/user --create-home --shell /bin/bash user \
    && mkdir -p /home/user/bin \
    && chgrp -R 0 /home/user \
    && chmod -R g=u /home/user

COPY --from=build /opt/jenkins-backup /opt/jenkins-backup
# The backup-pvc image's paths, kept as thin wrappers around the CLI (made executable in the
# build stage, whatever the checkout's modes).
COPY --from=build /src/bin/backup.sh /src/bin/restore.sh /src/bin/get-latest.sh /home/user/bin/

ENV PATH="/opt/jenkins-backup/bin:${PATH}" \
    HOME=/home/user \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BACKUP_METRICS_PORT=9180

USER 1000
WORKDIR /home/user
EXPOSE 9180

# `args:` in a pod spec replace CMD and keep tini, e.g.
#   args: ["jenkins-backup", "daemon", "--interval", "300"]
#   args: ["jenkins-backup", "restore", "latest"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["jenkins-backup", "daemon"]
