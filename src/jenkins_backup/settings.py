"""Everything configurable, read once from flags and the environment, passed down as values.

Nothing below this module reads ``os.environ``: cloud SDK variables are collected here and
handed to the storage layer as a mapping.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jenkins_backup.durations import parse_duration
from jenkins_backup.engine.scope import Scope
from jenkins_backup.errors import UsageError
from jenkins_backup.repository.snapshot import MAX_TAGS, tag_problem
from jenkins_backup.storage.factory import local_path

DEFAULT_TIMEOUT = 3600.0
# Commands that only read a little (the operator's getLatestAction, list) give up sooner: a dead
# endpoint must not hold the operator's single reconcile worker for an hour.
QUICK_TIMEOUT = 120.0
DEFAULT_PRUNE_GRACE = 6 * 3600.0
DEFAULT_PRUNE_INTERVAL = 3600.0
DEFAULT_SHUTDOWN_GRACE = 25.0
# Metrics: the age of the newest backup above which the shipped alert fires.
DEFAULT_MAX_BACKUP_AGE = 24 * 3600.0
# Prefixes of the variables the storage SDKs read (credentials, regions, endpoints, emulators).
_STORAGE_ENV = re.compile(
    r"^(AWS_|AZURE_|AZURITE_|GOOGLE_|GCE_|GCS_|CLOUDSDK_|IDENTITY_|IMDS_|MSI_"
    r"|STORAGE_EMULATOR_HOST|HTTPS?_PROXY|NO_PROXY)"
)


@dataclass(frozen=True)
class Retention:
    """Which backups to keep, by commit time and tag; all None (and no tag) means no retention.
    Pinned backups are kept whatever the policy says."""

    last: int | None = None
    hourly: int | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    within: str | None = None  # a duration (durations.py) before the newest commit
    tags: tuple[str, ...] = ()  # keep every backup with one of these tags

    @property
    def active(self) -> bool:
        counts = (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.within)
        return any(v is not None for v in counts) or bool(self.tags)


@dataclass(frozen=True)
class Settings:
    repository: str | None = None
    jenkins_home: str | None = None
    scope: Scope = field(default_factory=Scope)
    timeout: float = DEFAULT_TIMEOUT
    timeout_explicit: bool = False  # BACKUP_TIMEOUT or --timeout given
    threads: int = 8
    storage_env: Mapping[str, str] = field(default_factory=dict)
    retention: Retention = field(default_factory=Retention)
    # Unreferenced data younger than this is never deleted: it may belong to a backup in flight.
    prune_grace: float = DEFAULT_PRUNE_GRACE
    encryption_key: bytes | None = field(default=None, repr=False)
    interval: float | None = None  # daemon: back up on this schedule (standalone mode)
    metrics_port: int = 9180
    metrics_address: str = "0.0.0.0"
    # Where backup commands leave pid and status files for the daemon (same container); None:
    # nowhere (the daemon then knows only its own runs). load() derives it from the repository.
    runtime_dir: str | None = None
    # Daemon on SIGTERM: how long to wait for the operator's backup before pod deletion.
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    max_backup_age: float = DEFAULT_MAX_BACKUP_AGE  # served as a metric for the alert rule
    prune_interval: float = DEFAULT_PRUNE_INTERVAL  # daemon: retention schedule
    # backup may create a missing repository (BACKUP_CREATE=false: a mistyped location fails)
    create: bool = True
    # Backup: accept a scope that lost more than half of the newest backup's files or bytes (the
    # shrink guard; not applied below 100 files / 16 MiB: operations/shrink.py).
    allow_shrink: bool = False
    # Backup: a backup missing unreadable files fails (exit 3) after it is committed.
    strict: bool = False
    # Backup: tags stored in the snapshot (BACKUP_TAGS, then --tag), sorted, each valid.
    tags: tuple[str, ...] = ()

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


RUNTIME_DIR_NAME = ".runtime"


def default_runtime_dir(repository: str | None, env: Mapping[str, str], uid: int) -> str | None:
    """One runtime directory per repository, never one shared by all of a user's repositories.

    A local repository keeps it inside (group-writable like the repository, so that another UID
    of group 0 shares it): no temporary directory is needed, which a read-only root file system
    with no writable /tmp does not have. Object storage has it in TMPDIR, per user and
    repository, when TMPDIR (or /tmp) is writable; otherwise there is none.
    """
    if not repository:
        return None
    path = local_path(repository)
    if path is not None:
        return os.path.join(os.path.abspath(path), RUNTIME_DIR_NAME)
    tmp = env.get("TMPDIR") or "/tmp"
    if not (os.path.isdir(tmp) and os.access(tmp, os.W_OK | os.X_OK)):
        return None
    digest = hashlib.sha256(repository.encode()).hexdigest()[:16]
    return os.path.join(tmp, f"jenkins-backup-{uid}-{digest}")


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


def _seconds(name: str, value: str) -> float:
    """A duration that may be zero."""
    try:
        return 0.0 if float(value) == 0 else _positive_float(name, value)
    except ValueError:
        return _positive_float(name, value)  # raises the usual message


def _boolean(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in ("true", "yes", "1", "on"):
        return True
    if word in ("false", "no", "0", "off", ""):
        return False
    raise UsageError(f"{name} must be true or false, not {value!r}")


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


def _optional_int(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise UsageError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def tags_from(name: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """Tags as given (``name``: where from, for the message), checked, sorted, without
    duplicates."""
    tags = sorted(set(values))
    for tag in tags:
        problem = tag_problem(tag)
        if problem:
            raise UsageError(f"{name}: {problem}")
    if len(tags) > MAX_TAGS:
        raise UsageError(f"{name}: at most {MAX_TAGS} tags, not {len(tags)}")
    return tuple(tags)


def _retention(flags: Mapping[str, str | None], env: Mapping[str, str]) -> Retention:
    def pick(name: str, *fallbacks: str) -> int | None:
        for var in (name, *fallbacks):
            value = flags.get(var) or env.get(var)
            if value:
                return _optional_int(var, value)
        return None

    within = flags.get("BACKUP_KEEP_WITHIN") or env.get("BACKUP_KEEP_WITHIN") or None
    if within is not None:
        try:
            parse_duration(within)
        except ValueError as exc:
            raise UsageError(f"BACKUP_KEEP_WITHIN (--keep-within): {exc}") from None
    keep_tags = _split(flags.get("BACKUP_KEEP_TAG") or env.get("BACKUP_KEEP_TAG"))

    last = pick("BACKUP_KEEP_LAST", "BACKUP_COUNT")  # BACKUP_COUNT: the PVC image's keep-last
    if last == 0:
        raise UsageError("BACKUP_KEEP_LAST (or BACKUP_COUNT) must be at least 1")
    return Retention(
        last=last,
        hourly=pick("BACKUP_KEEP_HOURLY"),
        daily=pick("BACKUP_KEEP_DAILY"),
        weekly=pick("BACKUP_KEEP_WEEKLY"),
        monthly=pick("BACKUP_KEEP_MONTHLY"),
        within=within.strip() if within else None,
        tags=tags_from("BACKUP_KEEP_TAG (--keep-tag)", keep_tags),
    )


def _encryption_key(env: Mapping[str, str]) -> bytes | None:
    """The key from BACKUP_ENCRYPTION_KEY, or from the file BACKUP_ENCRYPTION_KEY_FILE names."""
    if env.get("BACKUP_ENCRYPTION_KEY"):
        return env["BACKUP_ENCRYPTION_KEY"].strip().encode()
    path = env.get("BACKUP_ENCRYPTION_KEY_FILE")
    if not path:
        return None
    return _read_key_file(path, f"BACKUP_ENCRYPTION_KEY_FILE {path}")


def _read_key_file(path: str, what: str) -> bytes:
    """A key mounted from a Secret: the file's content without surrounding white space."""
    try:
        with open(path, "rb") as f:
            key = f.read().strip()
    except OSError as exc:
        raise UsageError(f"cannot read {what}: {exc.strerror}") from exc
    if not key:
        raise UsageError(f"{what} is empty")
    return key


def new_encryption_key(
    value: str | None, path: str | None, env: Mapping[str, str] | None = None
) -> bytes:
    """The key ``key add`` wraps: --new-key(-file), else BACKUP_NEW_ENCRYPTION_KEY(_FILE)."""
    env = os.environ if env is None else env
    if not value and not path:
        value = env.get("BACKUP_NEW_ENCRYPTION_KEY") or None
        path = None if value else env.get("BACKUP_NEW_ENCRYPTION_KEY_FILE") or None
    if value:
        return value.strip().encode()
    if not path:
        raise UsageError(
            "no new key: give --new-key-file PATH or --new-key KEY, or set "
            "BACKUP_NEW_ENCRYPTION_KEY or BACKUP_NEW_ENCRYPTION_KEY_FILE"
        )
    return _read_key_file(path, f"the new key file {path}")


def load(
    *,
    repository: str | None = None,
    jenkins_home: str | None = None,
    scope: str | None = None,
    excludes: tuple[str, ...] = (),
    includes: tuple[str, ...] = (),
    timeout: str | None = None,
    threads: str | None = None,
    keep: Mapping[str, str | None] | None = None,
    interval: str | None = None,
    metrics_port: str | None = None,
    allow_shrink: bool = False,
    strict: bool = False,
    create: bool | None = None,
    tags: tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings: flags win over the environment.

    ``keep`` maps retention variable names (BACKUP_KEEP_LAST, ...) to flag values.
    """
    env = os.environ if environ is None else environ
    # Only what was given is passed: every default is the dataclass's, declared once above.
    given: dict[str, Any] = {}
    timeout_s = timeout or env.get("BACKUP_TIMEOUT")
    if timeout_s:
        given["timeout"] = _positive_float("BACKUP_TIMEOUT", timeout_s)
    threads_s = threads or env.get("BACKUP_THREADS")
    if threads_s:
        given["threads"] = _positive_int("BACKUP_THREADS", threads_s)
    interval_s = interval or env.get("BACKUP_INTERVAL")
    if interval_s:
        given["interval"] = _positive_float("BACKUP_INTERVAL", interval_s)
    port_s = metrics_port or env.get("BACKUP_METRICS_PORT")
    if port_s:
        given["metrics_port"] = _port(port_s)
    for name, var, parse in (
        ("prune_grace", "BACKUP_PRUNE_GRACE", _positive_float),
        ("shutdown_grace", "BACKUP_SHUTDOWN_GRACE", _seconds),
        ("max_backup_age", "BACKUP_MAX_AGE", _positive_float),
        ("prune_interval", "BACKUP_PRUNE_INTERVAL", _positive_float),
    ):
        if env.get(var):
            given[name] = parse(var, env[var])
    for name, var, flag in (
        ("allow_shrink", "BACKUP_ALLOW_SHRINK", allow_shrink),
        ("strict", "BACKUP_STRICT", strict),
    ):
        if flag or env.get(var):
            given[name] = flag or _boolean(var, env[var])
    for name, var in (
        ("metrics_address", "BACKUP_METRICS_ADDRESS"),
        ("runtime_dir", "BACKUP_RUNTIME_DIR"),
    ):
        if env.get(var):
            given[name] = env[var]
    if create is False:
        given["create"] = False
    elif env.get("BACKUP_CREATE"):
        given["create"] = _boolean("BACKUP_CREATE", env["BACKUP_CREATE"])
    location = repository_location(repository, env)
    if "runtime_dir" not in given:
        given["runtime_dir"] = default_runtime_dir(location, env, os.getuid())
    return Settings(
        repository=location,
        jenkins_home=jenkins_home or env.get("JENKINS_HOME") or None,
        scope=Scope(
            profile=scope or env.get("BACKUP_SCOPE") or Scope.profile,
            excludes=_split(env.get("BACKUP_EXCLUDE")) + excludes,
            includes=_split(env.get("BACKUP_INCLUDE")) + includes,
        ),
        timeout_explicit=bool(timeout_s),
        storage_env={k: v for k, v in env.items() if _STORAGE_ENV.match(k)},
        retention=_retention(keep or {}, env),
        tags=tags_from("BACKUP_TAGS (--tag)", _split(env.get("BACKUP_TAGS")) + tags),
        encryption_key=_encryption_key(env),
        **given,
    )


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise UsageError(f"BACKUP_METRICS_PORT must be a port number, not {value!r}")
    return int(value)
