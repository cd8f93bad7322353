"""Which backups a retention policy keeps: a pure function of commit times.

Semantics follow restic's ``forget``: snapshots are taken newest commit first; ``last`` keeps the
newest n; each bucket rule (hourly, daily, weekly, monthly) keeps the newest snapshot of each of
the n most recent buckets (UTC hours, days, ISO weeks, months) that hold one. A snapshot kept by
any rule is kept. The newest snapshot is always kept. Numbers play no part: the operator reuses
them after restoring an old backup, and the newest commits must survive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from jenkins_backup.settings import Retention


class Timed(Protocol):
    @property
    def time_ns(self) -> int: ...

    @property
    def number(self) -> int: ...


T = TypeVar("T", bound=Timed)


def _utc(time_ns: int) -> datetime:
    return datetime.fromtimestamp(time_ns // 1_000_000_000, tz=UTC)


def _hour(t: int) -> tuple[int, ...]:
    d = _utc(t)
    return (d.year, d.month, d.day, d.hour)


def _day(t: int) -> tuple[int, ...]:
    d = _utc(t)
    return (d.year, d.month, d.day)


def _week(t: int) -> tuple[int, ...]:
    year, week, _ = _utc(t).isocalendar()
    return (year, week)


def _month(t: int) -> tuple[int, ...]:
    d = _utc(t)
    return (d.year, d.month)


_BUCKETS: tuple[tuple[str, Callable[[int], tuple[int, ...]]], ...] = (
    ("hourly", _hour),
    ("daily", _day),
    ("weekly", _week),
    ("monthly", _month),
)


def apply_retention(snapshots: Sequence[T], policy: Retention) -> tuple[list[T], list[T]]:
    """Split ``snapshots`` into (kept, forgotten), both newest commit first.

    An inactive policy keeps everything.
    """
    ordered = sorted(snapshots, key=lambda s: (s.time_ns, s.number), reverse=True)
    if not policy.active:
        return ordered, []
    keep = [False] * len(ordered)
    if ordered:
        keep[0] = True  # the newest, always
    for i in range(min(policy.last or 0, len(ordered))):
        keep[i] = True
    for name, bucket_of in _BUCKETS:
        remaining = getattr(policy, name) or 0
        last_bucket: tuple[int, ...] | None = None
        for i, snap in enumerate(ordered):
            if remaining <= 0:
                break
            bucket = bucket_of(snap.time_ns)
            if bucket != last_bucket:
                keep[i] = True
                last_bucket = bucket
                remaining -= 1
    kept = [s for s, k in zip(ordered, keep, strict=True) if k]
    gone = [s for s, k in zip(ordered, keep, strict=True) if not k]
    return kept, gone
