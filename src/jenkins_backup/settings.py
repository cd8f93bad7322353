"""Everything configurable, read once from flags and the environment, passed down as values.

Nothing below this module reads ``os.environ``: cloud SDK variables are collected here and
handed to the storage layer as a mapping.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from jenkins_backup.engine.scope import Scope
from jenkins_backup.errors import UsageError

DEFAULT_TIMEOUT = 3600.0
# Prefixes of the variables the storage SDKs read (credentials, regions, endpoints, emulators).
_STORAGE_ENV = re.compile(
    r"^(AWS_|AZURE_|GOOGLE_|GCE_|GCS_|STORAGE_EMULATOR_HOST|HTTPS?_PROXY|NO_PROXY)"
)


@dataclass(frozen=True)
class Settings:
    repository: str | None = None
    jenkins_home: str | None = None
    scope: Scope = field(default_factory=Scope)
    timeout: float = DEFAULT_TIMEOUT
    threads: int = 8
    storage_env: Mapping[str, str] = field(default_factory=dict)

    def require_repository(self) -> str:
        if not self.repository:
            raise UsageError(
                "no repository configured: set BACKUP_REPOSITORY (a directory, file://, s3://, "
                "gs:// or az:// URL), or BACKUP_DIR, or BACKUP_BUCKET"
            )
        return self.repository

    def require_home(self) -> str:
        if not self.jenkins_home:
            raise UsageError("JENKINS_HOME is not set (environment variable or --jenkins-home)")
        return self.jenkins_home


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(p.strip() for p in re.split(r"[,\n]", value) if p.strip())


def _positive_float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{name} must be a number of seconds, not {value!r}") from None
    if not number > 0:
        raise UsageError(f"{name} must be positive, not {value!r}")
    return number


def _positive_int(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def repository_location(explicit: str | None, env: Mapping[str, str]) -> str | None:
    """BACKUP_REPOSITORY, else BACKUP_DIR (the PVC image), else BACKUP_BUCKET (the S3 example)."""
    if explicit:
        return explicit
    if env.get("BACKUP_REPOSITORY"):
        return env["BACKUP_REPOSITORY"]
    if env.get("BACKUP_DIR"):
        return env["BACKUP_DIR"]
    bucket = env.get("BACKUP_BUCKET", "").strip("/")
    if bucket:
        path = env.get("BACKUP_PATH", "").strip("/")
        return f"s3://{bucket}/{path}" if path else f"s3://{bucket}"
    return None


def load(
    *,
    repository: str | None = None,
    jenkins_home: str | None = None,
    scope: str | None = None,
    excludes: tuple[str, ...] = (),
    includes: tuple[str, ...] = (),
    timeout: str | None = None,
    threads: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings: flags win over the environment."""
    env = os.environ if environ is None else environ
    timeout_s = timeout or env.get("BACKUP_TIMEOUT")
    threads_s = threads or env.get("BACKUP_THREADS")
    return Settings(
        repository=repository_location(repository, env),
        jenkins_home=jenkins_home or env.get("JENKINS_HOME") or None,
        scope=Scope(
            profile=scope or env.get("BACKUP_SCOPE") or "jobs",
            excludes=_split(env.get("BACKUP_EXCLUDE")) + excludes,
            includes=_split(env.get("BACKUP_INCLUDE")) + includes,
        ),
        timeout=_positive_float("BACKUP_TIMEOUT", timeout_s) if timeout_s else DEFAULT_TIMEOUT,
        threads=_positive_int("BACKUP_THREADS", threads_s) if threads_s else 8,
        storage_env={k: v for k, v in env.items() if _STORAGE_ENV.match(k)},
    )
