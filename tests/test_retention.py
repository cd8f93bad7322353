"""Retention policies over synthetic commit times: a pure function, by time, never by number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from jenkins_backup.operations.retention import apply_retention
from jenkins_backup.settings import Retention, load

HOUR = 3600 * 10**9
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 10**9


@dataclass(frozen=True)
class Snap:
    time_ns: int
    number: int


def _kept(snaps: list[Snap], policy: Retention) -> list[int]:
    return [s.number for s in apply_retention(snaps, policy)[0]]


def test_keep_last_counts_by_commit_time_not_by_number() -> None:
    # After a restore of backup 2 the operator reuses low numbers: 3, 4 are the newest commits.
    snaps = [Snap(T0 + i * HOUR, n) for i, n in enumerate([10, 11, 12, 3, 4])]
    assert _kept(snaps, Retention(last=2)) == [4, 3]


def test_hourly_keeps_the_newest_of_each_hour() -> None:
    snaps = [Snap(T0 + m * 60 * 10**9, m) for m in range(0, 180, 20)]  # 3 hours, 3 per hour
    assert _kept(snaps, Retention(hourly=2)) == [160, 100]


def test_daily_weekly_monthly_buckets_in_utc() -> None:
    days = [datetime(2024, 1, 1, 23, tzinfo=UTC) + timedelta(days=d) for d in range(70)]
    snaps = [Snap(int(d.timestamp()) * 10**9, i + 1) for i, d in enumerate(days)]
    assert _kept(snaps, Retention(daily=3)) == [70, 69, 68]
    # ISO weeks start on Monday; 2024-01-01 was a Monday: day 70 is Sunday 2024-03-10.
    assert _kept(snaps, Retention(weekly=2)) == [70, 63]
    assert _kept(snaps, Retention(monthly=3)) == [70, 60, 31]


def test_rules_combine_and_the_newest_is_always_kept() -> None:
    snaps = [Snap(T0 + i * HOUR, i) for i in range(30)]
    assert _kept(snaps, Retention(last=1, daily=2)) == [29, 23]
    assert _kept(snaps, Retention(monthly=0)) == [29]


def test_no_policy_keeps_everything() -> None:
    snaps = [Snap(T0 + i, i) for i in range(5)]
    kept, gone = apply_retention(snaps, Retention())
    assert len(kept) == 5 and gone == []


def test_backup_count_is_keep_last() -> None:
    assert load(environ={"BACKUP_COUNT": "3"}).retention == Retention(last=3)
    assert load(environ={"BACKUP_COUNT": "3", "BACKUP_KEEP_LAST": "5"}).retention.last == 5


@given(
    times=st.lists(st.integers(0, 400 * 24 * HOUR), min_size=1, max_size=60, unique=True),
    last=st.none() | st.integers(1, 10),
    hourly=st.none() | st.integers(0, 10),
    daily=st.none() | st.integers(0, 10),
    weekly=st.none() | st.integers(0, 5),
    monthly=st.none() | st.integers(0, 5),
)
def test_policy_properties(
    times: list[int],
    last: int | None,
    hourly: int | None,
    daily: int | None,
    weekly: int | None,
    monthly: int | None,
) -> None:
    snaps = [Snap(T0 + t, n) for n, t in enumerate(times)]
    policy = Retention(last, hourly, daily, weekly, monthly)
    kept, gone = apply_retention(snaps, policy)
    newest = max(snaps, key=lambda s: s.time_ns)
    assert newest in kept
    assert sorted(kept + gone, key=lambda s: s.number) == sorted(snaps, key=lambda s: s.number)
    ordered = sorted(snaps, key=lambda s: s.time_ns, reverse=True)
    assert ordered[: last or 0] == [s for s in ordered[: last or 0] if s in kept]
    bound = 1 + (last or 0) + sum(v or 0 for v in (hourly, daily, weekly, monthly))
    if policy.active:
        assert len(kept) <= bound
    else:
        assert gone == []
    # Renumbering changes nothing: the decision depends on commit times alone.
    renumbered = [Snap(s.time_ns, 1000 - s.number) for s in snaps]
    kept2, _ = apply_retention(renumbered, policy)
    assert [s.time_ns for s in kept2] == [s.time_ns for s in kept]
