"""Which backups a retention policy keeps: a pure function of commit times, tags and pins.

Semantics follow restic's ``forget``: snapshots are taken newest commit first; ``last`` keeps the
newest n; each bucket rule (hourly, daily, weekly, monthly) keeps the newest snapshot of each of
the n most recent buckets (UTC hours, days, ISO weeks, months) that hold one; ``within`` keeps
every snapshot committed within that duration of the newest one; ``tags`` keeps every snapshot
carrying one of them. A snapshot kept by any rule is kept. The newest snapshot is always kept,
and so is every pinned one, whatever the policy. Numbers play no part: the operator reuses them
after restoring an old backup, and the newest commits must survive.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from jenkins_backup.durations import parse_duration
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


def _no_tags(snapshot: object) -> Collection[str]:
    return ()


def _not_pinned(snapshot: object) -> bool:
    return False


def apply_retention(
    snapshots: Sequence[T],
    policy: Retention,
    *,
    tags: Callable[[T], Collection[str]] = _no_tags,
    pinned: Callable[[T], bool] = _not_pinned,
) -> tuple[list[T], list[T]]:
    """Split ``snapshots`` into (kept, forgotten), both newest commit first.

    ``tags`` tells a snapshot's tags, ``pinned`` whether it is pinned (the caller answers True
    when it cannot tell: a backup whose pin state is unknown is kept). An inactive policy keeps
    everything.
    """
    ordered = sorted(snapshots, key=lambda s: (s.time_ns, s.number), reverse=True)
    if not policy.active:
        return ordered, []
    keep = [pinned(s) for s in ordered]
    if ordered:
        keep[0] = True  # the newest, always
    for i in range(min(policy.last or 0, len(ordered))):
        keep[i] = True
    if policy.within is not None and ordered:
        since = parse_duration(policy.within).before(ordered[0].time_ns)
        for i, snap in enumerate(ordered):
            if snap.time_ns > since:
                keep[i] = True
    if policy.tags:
        wanted = set(policy.tags)
        for i, snap in enumerate(ordered):
            if wanted.intersection(tags(snap)):
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
