"""Pieces shared by the object-storage backends: transfer limits, URL parsing, safe messages.

Kept free of any cloud SDK import so that it costs nothing at start-up.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from jenkins_backup.errors import UsageError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

MiB = 1024 * 1024


@dataclass(frozen=True)
class TransferOptions:
    """Network limits for one backend.

    Every request is bounded (``request_timeout``) and retried with exponential backoff and
    jitter for at most ``retry_timeout``, so a dead or stalled endpoint turns into a
    StorageError instead of a hang. The defaults suit packs of a few MiB over a slow link; the
    command-wide bound (BACKUP_TIMEOUT) is enforced above this layer.
    """

    connect_timeout: float = 5.0
    request_timeout: float = 120.0
    max_retries: int = 6
    retry_timeout: float = 90.0
    #: Objects larger than this are uploaded in parts of this size (where the store allows it).
    part_size: int = 8 * MiB
    #: Parts of one object uploaded at once; callers bound the number of objects in flight.
    part_concurrency: int = 4
    #: Idle keep-alive connections kept per host.
    pool_size: int = 32


def split_url(location: str, what: str) -> tuple[str, str]:
    """``scheme://bucket/some/prefix`` -> (bucket, "some/prefix"), rejecting odd forms."""
    parsed = urlparse(location)
    bucket = parsed.netloc
    if not bucket or "@" in bucket or parsed.query or parsed.fragment:
        raise UsageError(f"expected {parsed.scheme}://{what}/prefix, got {redact_url(location)}")
    prefix = unquote(parsed.path).strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise UsageError(f"invalid prefix {prefix!r} in {redact_url(location)}")
    return bucket, prefix


def flag(environ: Mapping[str, str], name: str) -> bool | None:
    """A boolean environment variable: True, False, or None when unset or empty."""
    value = environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{name} must be true or false")


def is_loopback(url: str) -> bool:
    """True for http(s)://localhost or a loopback IP: plain http is harmless there."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, allow_http: bool | None, variable: str) -> bool:
    """Validate an endpoint URL; return whether plain http must be allowed for it."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"{variable} must be an http(s) URL")
    if parsed.scheme == "https":
        return False
    if allow_http is False or (allow_http is None and not is_loopback(url)):
        raise UsageError(
            f"{variable} uses plain http to a non-loopback host; set {allow_http_name(variable)}"
            "=true to allow it"
        )
    return True


def allow_http_name(variable: str) -> str:
    return "AZURE_ALLOW_HTTP" if variable.startswith("AZURE") else "AWS_ALLOW_HTTP"


_QUERY = re.compile(r"(https?://[^\s?\"'<>]*)\?[^\s\"'<>]*")
_SECRETS = re.compile(
    r"(?i)(sig|signature|x-amz-security-token|x-amz-credential|accountkey|sharedaccesssignature"
    r"|access_token|token|secret|password)=[^&;\s\"'<>]*"
)


def redact_url(url: str) -> str:
    """Drop user info and query strings, which is where URLs carry credentials (SAS tokens)."""
    parsed = urlparse(url)
    if parsed.scheme and parsed.hostname:
        netloc = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
        return f"{parsed.scheme}://{netloc}{parsed.path}"
    return _SECRETS.sub(r"\1=***", url)


def short_message(exc: BaseException, limit: int = 300) -> str:
    """First line of a library error, without query strings or key=value secrets, bounded.

    Library messages carry the request URL and the server's reply, which helps an operator;
    they never carry our request headers, but a SAS token can sit in a URL query.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _QUERY.sub(r"\1", text)
    text = _SECRETS.sub(r"\1=***", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def obstore_client_options(options: TransferOptions, allow_http: bool) -> ClientConfig:
    """HTTP client settings for obstore (reqwest): bounded connect and request times."""
    config: ClientConfig = {
        "connect_timeout": timedelta(seconds=options.connect_timeout),
        "timeout": timedelta(seconds=options.request_timeout),
        "pool_max_idle_per_host": str(options.pool_size),
        "pool_idle_timeout": timedelta(seconds=30),
        "user_agent": "jenkins-backup",
    }
    if allow_http:
        config["allow_http"] = True
    return config


def obstore_retry(options: TransferOptions) -> RetryConfig:
    """obstore retries 5xx, throttling, connection errors and timeouts with jittered backoff."""
    return {
        "max_retries": options.max_retries,
        "retry_timeout": timedelta(seconds=options.retry_timeout),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=5),
            "base": 2,
        },
    }
