"""Retention's new rules as a pure function: --keep-within (restic's meaning: within a duration
of the newest commit), --keep-tag, and pins, which every rule and every policy keep; durations
and tags as settings parse them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jenkins_backup.durations import Duration, parse_duration
from jenkins_backup.errors import CorruptObject, UsageError
from jenkins_backup.operations.retention import apply_retention
from jenkins_backup.repository.snapshot import Snapshot, decode_snapshot, encode_snapshot
from jenkins_backup.settings import Retention, load

HOUR = 3600 * 10**9
DAY = 24 * HOUR


def _ns(*date: int) -> int:
    return int(datetime(*date, tzinfo=UTC).timestamp()) * 10**9  # type: ignore[misc]


@dataclass(frozen=True)
class Snap:
    time_ns: int
    number: int
    tags: tuple[str, ...] = ()
    pinned: bool = False


def _apply(snaps: list[Snap], policy: Retention) -> tuple[list[int], list[int]]:
    kept, gone = apply_retention(snaps, policy, tags=lambda s: s.tags, pinned=lambda s: s.pinned)
    return [s.number for s in kept], [s.number for s in gone]


def test_keep_within_keeps_what_is_within_the_duration_of_the_newest_commit() -> None:
    # Daily backups for 20 days; the newest is days behind "now": it is the reference, as
    # in restic (a repository whose backups stopped does not lose its history to the clock).
    t0 = _ns(2024, 3, 1)
    snaps = [Snap(t0 + d * DAY, d + 1) for d in range(20)]
    assert _apply(snaps, Retention(within="7d"))[0] == [20, 19, 18, 17, 16, 15, 14]
    assert _apply(snaps, Retention(within="1w"))[0] == [20, 19, 18, 17, 16, 15, 14]
    assert _apply(snaps, Retention(within="36h"))[0] == [20, 19]
    assert _apply(snaps, Retention(within="1m"))[0] == list(range(20, 0, -1))


def test_keep_within_counts_calendar_months_and_years() -> None:
    newest = _ns(2024, 3, 31, 12)
    snaps = [
        Snap(newest, 1),
        Snap(_ns(2024, 2, 29, 13), 2),  # within a month of 31 March 12:00: after 29 Feb 12:00
        Snap(_ns(2024, 2, 29, 11), 3),  # just before
        Snap(_ns(2023, 1, 1, 0), 4),  # within 1y2m29d? 2023-01-02 12:00 is the bound: no
        Snap(_ns(2023, 1, 3, 0), 5),
    ]
    assert _apply(snaps, Retention(within="1m"))[0] == [1, 2]
    assert _apply(snaps, Retention(within="1y2m29d"))[0] == [1, 2, 3, 5]
    assert parse_duration("1y2m3d").before(newest) == _ns(2023, 1, 28, 12)


def test_keep_tag_keeps_every_tagged_backup_and_nothing_else() -> None:
    t0 = _ns(2024, 1, 1)
    snaps = [
        Snap(t0, 1, ("before-upgrade",)),
        Snap(t0 + HOUR, 2),
        Snap(t0 + 2 * HOUR, 3, ("weekly", "before-upgrade")),
        Snap(t0 + 3 * HOUR, 4, ("other",)),
        Snap(t0 + 4 * HOUR, 5),
    ]
    assert _apply(snaps, Retention(tags=("before-upgrade",))) == ([5, 3, 1], [4, 2])
    assert _apply(snaps, Retention(tags=("other", "weekly"))) == ([5, 4, 3], [2, 1])
    assert _apply(snaps, Retention(last=1, tags=("nothing",))) == ([5], [4, 3, 2, 1])


@given(
    times=st.lists(st.integers(0, 800 * DAY), min_size=1, max_size=40, unique=True),
    pins=st.sets(st.integers(0, 39)),
    tagged=st.sets(st.integers(0, 39)),
    last=st.none() | st.integers(1, 5),
    hourly=st.none() | st.integers(0, 5),
    daily=st.none() | st.integers(0, 5),
    weekly=st.none() | st.integers(0, 3),
    monthly=st.none() | st.integers(0, 3),
    within=st.none() | st.sampled_from(["1h", "2d", "1w", "1m", "1y2m3d", "36h"]),
    keep_tags=st.sampled_from([(), ("t",), ("absent",)]),
)
def test_pinned_backups_survive_every_rule(
    times: list[int],
    pins: set[int],
    tagged: set[int],
    last: int | None,
    hourly: int | None,
    daily: int | None,
    weekly: int | None,
    monthly: int | None,
    within: str | None,
    keep_tags: tuple[str, ...],
) -> None:
    t0 = _ns(2023, 6, 1)
    snaps = [Snap(t0 + t, n, ("t",) if n in tagged else (), n in pins) for n, t in enumerate(times)]
    policy = Retention(last, hourly, daily, weekly, monthly, within, keep_tags)
    kept, gone = _apply(snaps, policy)
    assert {s.number for s in snaps if s.pinned} <= set(kept)
    if "t" in keep_tags:
        assert {s.number for s in snaps if s.tags} <= set(kept)
    assert sorted(kept + gone) == sorted(s.number for s in snaps)
    # A pin only ever adds to what is kept: without pins the rest is decided the same way.
    unpinned = [Snap(s.time_ns, s.number, s.tags) for s in snaps]
    kept_unpinned, _ = _apply(unpinned, policy)
    assert set(kept) == set(kept_unpinned) | {s.number for s in snaps if s.pinned}


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("7d", Duration(days=7)),
        ("2w", Duration(weeks=2)),
        ("36h", Duration(hours=36)),
        ("1y2m3d", Duration(1, 2, 0, 3)),
        ("1y2m3w4d5h", Duration(1, 2, 3, 4, 5)),
    ],
)
def test_durations(text: str, duration: Duration) -> None:
    assert parse_duration(text) == duration


@pytest.mark.parametrize("text", ["", "7", "d", "3d2w", "1.5d", "-1d", "7 days", "0d", "1x"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
    if text:
        with pytest.raises(UsageError, match="BACKUP_KEEP_WITHIN"):
            load(environ={"BACKUP_KEEP_WITHIN": text})


def test_a_huge_duration_keeps_everything() -> None:
    assert parse_duration("9999y").before(_ns(2024, 1, 1)) < 0
    assert parse_duration("999999d").before(_ns(2024, 1, 1)) < 0


def test_retention_settings() -> None:
    policy = load(environ={"BACKUP_KEEP_WITHIN": "2w", "BACKUP_KEEP_TAG": "b,a"}).retention
    assert policy == Retention(within="2w", tags=("a", "b")) and policy.active
    tagged = load(environ={"BACKUP_TAGS": "nightly, before-upgrade"}, tags=("x", "nightly"))
    assert tagged.tags == ("before-upgrade", "nightly", "x")


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        (("two words",), "characters a tag cannot have"),
        (("-leading",), "characters a tag cannot have"),
        (("caf\u00e9",), "characters a tag cannot have"),
        (("x" * 65,), "longer than 64"),
        (tuple(f"t{i}" for i in range(17)), "at most 16 tags"),
    ],
)
def test_bad_tags_are_usage_errors(tags: tuple[str, ...], reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        load(environ={}, tags=tags)
    with pytest.raises(UsageError, match=reason):
        load(environ={"BACKUP_KEEP_TAG": ",".join(tags)})


def test_tags_round_trip_and_an_untagged_snapshot_is_encoded_as_before() -> None:
    snap = Snapshot(3, 10**18, b"\1" * 32, "jobs", "pod", tags=("a", "b"))
    assert decode_snapshot(encode_snapshot(snap)) == snap
    plain = Snapshot(3, 10**18, b"\1" * 32, "jobs", "pod")
    assert b"tags" not in encode_snapshot(plain)
    for bad in (b'"tags":"a"', b'"tags":[1]', b'"tags":[""]', b'"tags":[' + b'"a",' * 17):
        doc = encode_snapshot(plain).replace(b'"stats"', bad.rstrip(b",") + b'],"stats"')
        if not bad.endswith(b","):
            doc = encode_snapshot(plain).replace(b'"stats"', bad + b',"stats"')
        with pytest.raises(CorruptObject, match="tags"):
            decode_snapshot(doc)
