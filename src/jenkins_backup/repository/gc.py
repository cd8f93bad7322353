"""Garbage collection without locks: ``plan`` decides from one consistent view, ``execute`` acts.

A pack no snapshot references is first *condemned*: listed in a condemned list and dropped from
the index, so that no backup starting later deduplicates against it. It is deleted by a later
run only when it has been condemned for longer than the grace period and is still unreferenced;
a backup that deduplicated against it just before has committed by then, so the reference is
seen and the pack is *rescued* (indexed again) instead. Forgotten snapshots leave tombstones
that count as references for the grace period (a backup in flight may use one as its parent).
The full argument, with the crash-safety order of the steps, is in docs/FORMAT.md.

Every age is the difference of two times of the store's clock: ``now`` (prune's caller takes it
from a time stamp the store has just put on an object) and the stamps the store put on packs and
tombstones, or the time prune itself wrote in a condemned list's name. The plan holds each
pack's index records as bytes (one object per pack) and marks into compact id sets, not a
Python object per blob.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from jenkins_backup.errors import CorruptObject, ObjectNotFound, RepositoryError, SnapshotVanished
from jenkins_backup.repository.idtable import IdSet
from jenkins_backup.repository.index import (
    encode_records,
    entry_records,
    pack_records,
    record_lengths,
    records_entries,
)
from jenkins_backup.repository.layout import condemned_key, condemned_time, pack_key, written_ns
from jenkins_backup.repository.pack import DATA, TREE, PackBuilder
from jenkins_backup.repository.repo import Repository, read_pack_header
from jenkins_backup.repository.snapshot import SnapshotRef, iso_time
from jenkins_backup.repository.tree import FILE
from jenkins_backup.repository.walk import Parts, walk
from jenkins_backup.repository.writer import DATA_PACK_TARGET, TREE_PACK_TARGET
from jenkins_backup.storage.base import ObjectInfo

log = logging.getLogger(__name__)

#: Merge the index files into one when there are more than this many (loading many is slow).
CONSOLIDATE_INDEX_FILES = 32
#: Repack a pack when more than this fraction of its bytes is garbage.
REPACK_RATIO = 0.5
_LOAD_ATTEMPTS = 5

Records = bytes  # a pack's entries as an index file stores them


@dataclass
class GcResult:
    packs_deleted: int = 0
    bytes_freed: int = 0
    packs_condemned: int = 0
    bytes_condemned: int = 0
    packs_rescued: int = 0
    packs_repacked: int = 0
    bytes_repacked: int = 0
    index_files_replaced: int = 0
    tombstones_removed: int = 0
    tombstones_pending: int = 0  # forgotten backups whose data the grace period still keeps
    tombstones_until_ns: int = 0  # when the last of them expires (store's clock), or 0
    packs_waiting: int = 0  # condemned (now or before), deleted once their grace has passed
    bytes_waiting: int = 0
    waiting_until_ns: int = 0  # when the last of them may be deleted, or 0
    blocked: str = ""  # why nothing was condemned or deleted (a damaged backup), or ""
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What one collection will do, decided from one view of the repository. A dry run is the
    plan printed; ``execute`` carries it out."""

    repo: Repository = field(repr=False, compare=False)
    now_ns: int
    grace_ns: int
    index_files: tuple[str, ...]
    damaged: tuple[str, ...]  # damaged index files, replaced by the new index
    condemned_files: Mapping[str, frozenset[bytes]] = field(repr=False)
    indexed: Mapping[bytes, Records] = field(repr=False)  # packs of the index files
    stored: Mapping[bytes, ObjectInfo] = field(repr=False)
    chunks: IdSet = field(repr=False, compare=False)  # referenced data blobs
    trees: IdSet = field(repr=False, compare=False)  # referenced trees
    condemn: tuple[bytes, ...] = ()
    repack: tuple[bytes, ...] = ()
    drop: tuple[bytes, ...] = ()  # indexed but gone from the store
    rescue: Mapping[bytes, Records] = field(default_factory=dict, repr=False)
    delete: tuple[bytes, ...] = ()
    expired_tombstones: tuple[str, ...] = ()
    tombstones_pending: int = 0
    tombstones_until_ns: int = 0
    waiting: tuple[int, int, int] = (0, 0, 0)  # packs, bytes, until (ns) as GcResult says
    problems: tuple[str, ...] = ()
    blocked: str = ""

    def referenced(self, blob_id: bytes) -> bool:
        return blob_id in self.chunks or blob_id in self.trees

    def result(self) -> GcResult:
        """The counts of the plan, as a dry run reports them (nothing done yet)."""
        if self.blocked:
            return GcResult(
                tombstones_pending=self.tombstones_pending,
                tombstones_until_ns=self.tombstones_until_ns,
                blocked=self.blocked,
                problems=list(self.problems),
            )
        return GcResult(
            packs_deleted=len(self.delete),
            bytes_freed=sum(self.stored[p].size for p in self.delete),
            packs_condemned=len(self.condemn) + len(self.repack),
            bytes_condemned=sum(self.stored[p].size for p in (*self.condemn, *self.repack)),
            packs_rescued=len(self.rescue),
            packs_repacked=len(self.repack),
            tombstones_removed=len(self.expired_tombstones),
            tombstones_pending=self.tombstones_pending,
            tombstones_until_ns=self.tombstones_until_ns,
            packs_waiting=self.waiting[0],
            bytes_waiting=self.waiting[1],
            waiting_until_ns=self.waiting[2],
            problems=list(self.problems),
        )

    def __str__(self) -> str:
        r = self.result()
        lines = [
            f"prune plan at {iso_time(self.now_ns)}, grace {self.grace_ns / 1e9:g} s:",
            f"  delete {r.packs_deleted} pack(s) ({r.bytes_freed} bytes)",
            f"  condemn {r.packs_condemned} pack(s) ({r.bytes_condemned} bytes),"
            f" of which {r.packs_repacked} repacked first",
            f"  rescue {r.packs_rescued}, drop {len(self.drop)} indexed but missing",
            f"  remove {r.tombstones_removed} tombstone(s), {r.tombstones_pending} still kept",
        ]
        if self.blocked:
            lines.append(f"  blocked: {self.blocked}")
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class _View:
    """The index files and condemned lists, loaded as one consistent view."""

    index_files: tuple[str, ...]
    indexed: dict[bytes, Records]
    condemned: dict[bytes, Records]  # condemned and not indexed again
    condemned_at: dict[bytes, int]  # newest condemnation time (ns) of each listed pack
    condemned_files: dict[str, frozenset[bytes]]
    damaged: tuple[str, ...]  # index files skipped as damaged: what they listed looks unlisted


def _index_file(repo: Repository, key: str, damaged: list[str]) -> list[tuple[bytes, Records]]:
    """An index file's packs; a damaged one is skipped (an index file is a cache)."""
    try:
        return list(pack_records(repo.read_list(key)))
    except CorruptObject as exc:
        log.warning("skipping damaged index file %s: %s", key, exc)
        damaged.append(key)
        return []


def _load(repo: Repository) -> _View:
    """Load index files and condemned lists; retry while a concurrent prune replaces them.

    A pack moves between lists by writing the new list before deleting the old one. Checking
    after loading that no list we loaded has gone makes the view consistent: every pack is seen
    where it is, never as an unlisted orphan.
    """
    for _ in range(_LOAD_ATTEMPTS):
        index_keys = repo.index_files()
        condemned_keys = repo.condemned_lists()
        damaged: list[str] = []
        try:
            index_lists = [_index_file(repo, k, damaged) for k in index_keys]
            condemned_lists = [list(pack_records(repo.read_list(k))) for k in condemned_keys]
        except ObjectNotFound:
            continue
        if not set(index_keys) <= set(repo.index_files()):
            continue
        if not set(condemned_keys) <= set(repo.condemned_lists()):
            continue
        view = _View(tuple(index_keys), {}, {}, {}, {}, tuple(damaged))
        for packs in index_lists:
            for pack_id, records in packs:
                view.indexed.setdefault(pack_id, records)
        for key, packs in zip(condemned_keys, condemned_lists, strict=True):
            at = condemned_time(key)
            view.condemned_files[key] = frozenset(p for p, _ in packs)
            for pack_id, records in packs:
                view.condemned_at[pack_id] = max(at, view.condemned_at.get(pack_id, 0))
                if pack_id not in view.indexed:
                    view.condemned.setdefault(pack_id, records)
        return view
    raise RepositoryError("the index kept changing during prune (another prune?); run it again")


def _roots(
    repo: Repository, grace_ns: int, now_ns: int, problems: list[str]
) -> tuple[list[tuple[str, bytes]], list[str], list[int]]:
    """Root trees of every snapshot and young tombstone; keys of expired tombstones; when each
    young tombstone expires.

    Snapshots are listed before tombstones: a forget writes its tombstone before deleting the
    snapshot, so a snapshot forgotten meanwhile is seen in one listing or the other.
    """
    refs: list[tuple[str, SnapshotRef, bool]] = [
        (f"backup {r.number}", r, True) for r in repo.all_snapshot_refs()
    ]
    expired: list[str] = []
    pending: list[int] = []
    for stone in repo.tombstones():
        if now_ns - stone.since_ns >= grace_ns:
            expired.append(stone.key)
        else:
            refs.append((f"forgotten backup {stone.ref.number}", stone.stored, False))
            pending.append(stone.since_ns + grace_ns)
    roots: list[tuple[str, bytes]] = []
    for label, ref, live in refs:
        try:
            roots.append((label, repo.load_snapshot(ref).tree))
        except SnapshotVanished as exc:
            if not live:
                problems.append(f"{label}: {exc}")
            # else forgotten meanwhile: its tombstone is listed after this
        except CorruptObject as exc:
            problems.append(f"{label}: {exc}")
    return roots, expired, pending


def _mark(
    repo: Repository,
    roots: Iterable[tuple[str, bytes]],
    listed: IdSet,
    problems: list[str],
) -> tuple[IdSet, IdSet, set[bytes]]:
    """(trees, chunks) reachable from ``roots``, and the chunks in no listed pack. Trees are
    read through the repository's own reader; an unreadable tree is a problem."""
    trees, chunks = IdSet(), IdSet()
    missing: set[bytes] = set()
    for label, root in roots:

        def unreadable(parts: Parts, exc: Exception, label: str = label) -> None:
            problems.append(f"{label}: {exc}")

        try:
            for _, entries in walk(repo.read_tree, root, on_error=unreadable, seen=trees):
                for e in entries:
                    if e.kind != FILE:
                        continue
                    for cid in e.content:
                        if chunks.add(cid) and cid not in listed:
                            missing.add(cid)
        except CorruptObject as exc:  # beyond the walk's bounds: a damaged backup
            problems.append(f"{label}: {exc}")
    return trees, chunks, missing


def plan(repo: Repository, now_ns: int, grace: float) -> Plan:
    """Decide one collection at ``now_ns`` (the store's time); see docs/FORMAT.md."""
    grace_ns = int(grace * 1e9)
    tree_problems: list[str] = []
    roots, expired, pending = _roots(repo, grace_ns, now_ns, tree_problems)
    view = _load(repo)
    stored = repo.packs()
    # Packs in no list: leftovers of killed runs, packs of backups in flight, or what a damaged
    # or deleted index file listed. Their headers say what they hold (usually few of them).
    orphans = [p for p in stored if p not in view.indexed and p not in view.condemned_at]
    unlisted: dict[bytes, Records] = {}
    for pack_id in orphans:
        try:
            unlisted[pack_id] = entry_records(read_pack_header(repo, pack_id, stored[pack_id].size))
        except (CorruptObject, ObjectNotFound):
            continue
    listed = IdSet()
    for source in (view.indexed, view.condemned, unlisted):
        for records in source.values():
            for blob_id, _ in record_lengths(records):
                listed.add(blob_id)
    trees, chunks, missing = _mark(repo, roots, listed, tree_problems)
    del listed

    # A referenced blob keeps alive the first pack that holds it, indexed before condemned (as
    # readers find it): the old copy of a repacked blob must not rescue its condemned pack.
    live: dict[bytes, int] = {}
    claimed = IdSet()
    for source in (view.indexed, view.condemned):
        for pack_id, records in source.items():
            live[pack_id] = sum(
                n
                for b, n in record_lengths(records)
                if (b in chunks or b in trees) and claimed.add(b)
            )
    del claimed

    # Unlisted packs holding referenced blobs are indexed again. With a damaged index file in
    # view every unlisted pack may be one it listed, which a backup in flight may use: all are
    # indexed again (the usual condemnation applies to them later), and none is deleted now.
    rescue: dict[bytes, Records] = {
        p: r
        for p, r in unlisted.items()
        if view.damaged or any(b in chunks or b in trees for b, _ in record_lengths(r))
    }
    problems = list(tree_problems)
    if missing:  # known ids: their absence hides no reference, so collection goes on
        problems.append(f"{len(missing)} blob(s) that backups reference are missing")
    base = Plan(
        repo, now_ns, grace_ns, view.index_files, view.damaged, view.condemned_files,
        view.indexed, stored,
        chunks, trees, tombstones_pending=len(pending),
        tombstones_until_ns=max(pending, default=0), problems=tuple(problems),
    )  # fmt: skip
    if tree_problems:
        return replace(base, blocked=_BLOCKED)

    def old(pack_id: bytes) -> bool:
        return now_ns - written_ns(stored[pack_id]) >= grace_ns

    condemn: list[bytes] = []
    repack: list[bytes] = []
    drop: list[bytes] = []
    for pack_id, records in view.indexed.items():
        if pack_id not in stored:
            drop.append(pack_id)  # indexed but gone: never let a backup dedup against it
            continue
        if not old(pack_id):
            continue
        total = sum(n for _, n in record_lengths(records))
        if live[pack_id] == 0:
            condemn.append(pack_id)
        elif total - live[pack_id] > REPACK_RATIO * total:
            repack.append(pack_id)
    for pack_id, records in view.condemned.items():
        if pack_id in stored and live[pack_id] > 0:
            rescue[pack_id] = records
    delete = [
        p
        for p in view.condemned
        if p not in rescue and p in stored and now_ns - view.condemned_at[p] >= grace_ns
    ]
    if not view.damaged:
        delete += [p for p in orphans if p not in rescue and old(p)]
    due = set(delete)
    waiting = [p for p in view.condemned if p in stored and p not in rescue and p not in due]
    until = [view.condemned_at[p] + grace_ns for p in waiting]
    if condemn or repack:
        until.append(now_ns + grace_ns)
    waiting += [*condemn, *repack]
    return replace(
        base,
        condemn=tuple(condemn),
        repack=tuple(repack),
        drop=tuple(drop),
        rescue=rescue,
        delete=tuple(delete),
        expired_tombstones=tuple(expired),
        waiting=(len(waiting), sum(stored[p].size for p in waiting), max(until, default=0)),
    )


_BLOCKED = "some backups are damaged or unreadable (run verify)"


def execute(plan: Plan) -> GcResult:
    """Carry out ``plan``, writing each new state before deleting the old (docs/FORMAT.md)."""
    result = plan.result()
    if plan.blocked:
        return result
    repo = plan.repo
    # 1. Copy the live blobs of mostly-garbage packs into new packs (not referenced yet).
    new_packs, repacked = _repack(plan, result)
    condemn = (*plan.condemn, *repacked)
    # 2. Record the condemnation before the index forgets the packs: a crash in between leaves
    #    them indexed, never as unlisted orphans that look deletable. Its time is the plan's,
    #    the store's clock.
    if condemn:
        plain = encode_records((p, plan.indexed[p]) for p in condemn)
        key = condemned_key(plan.now_ns, repo.codec.blob_id(plain))
        repo.storage.put(key, repo.codec.seal(plain), create_only=True)
    # 3. A new index covering every pack still live, then the index files it supersedes.
    gone_from_index = set(condemn) | set(plan.drop)
    indexed_after = set(plan.indexed) - gone_from_index
    rescue = plan.rescue
    if (
        gone_from_index
        or rescue
        or new_packs
        or plan.damaged
        or len(plan.index_files) > CONSOLIDATE_INDEX_FILES
    ):
        packs = [(p, plan.indexed[p]) for p in sorted(indexed_after)]
        packs += sorted(rescue.items()) + new_packs
        new_key = repo.write_index(encode_records(packs), plan.damaged)
        for key in plan.index_files:
            if key != new_key:
                repo.storage.delete(key)
        result.index_files_replaced = len(plan.index_files)
        indexed_after |= set(rescue) | {p for p, _ in new_packs}
    # 4. Delete what has been condemned for longer than the grace period, and old orphans;
    #    never a pack the new index lists (packs are salted, so this is only a safeguard).
    delete = [p for p in plan.delete if p not in indexed_after]
    for pack_id in delete:
        repo.storage.delete(pack_key(pack_id))
    # 5. Condemned lists whose every pack is gone or indexed again have done their work.
    deleted = set(delete)
    for key, listed in plan.condemned_files.items():
        if all(p in deleted or p in indexed_after or p not in plan.stored for p in listed):
            repo.storage.delete(key)
    for key in plan.expired_tombstones:
        repo.storage.delete(key)
    return result


def _repack(plan: Plan, result: GcResult) -> tuple[list[tuple[bytes, Records]], list[bytes]]:
    """Copy the referenced blobs of the packs to repack (verified, still sealed) into new packs.

    Returns the new packs and the packs fully copied; a damaged pack is left as it is.
    """
    repo = plan.repo
    builders = {DATA: PackBuilder(), TREE: PackBuilder()}
    targets = {DATA: DATA_PACK_TARGET, TREE: TREE_PACK_TARGET}
    written: list[tuple[bytes, Records]] = []
    copied: set[bytes] = set()

    def upload(builder: PackBuilder) -> None:
        pack_id, data, entries = builder.finish(repo.codec)
        repo.storage.put(pack_key(pack_id), data, create_only=True)
        written.append((pack_id, entry_records(entries)))
        result.bytes_repacked += len(data)

    done: list[bytes] = []
    for pack_id in plan.repack:
        entries = records_entries(plan.indexed[pack_id])
        wanted = [e for e in entries if plan.referenced(e.id) and e.id not in copied]
        try:
            data = repo.storage.get(pack_key(pack_id))
            for e in wanted:  # never copy damage
                sealed = data[e.offset : e.offset + e.length]
                repo.codec.unseal_verified(sealed, e.id, e.raw_length)
        except (CorruptObject, ObjectNotFound) as exc:
            result.problems.append(f"pack {pack_id.hex()[:16]} not repacked: {exc}")
            continue
        done.append(pack_id)
        for e in wanted:
            sealed = data[e.offset : e.offset + e.length]
            builder = builders[e.type]
            builder.add(e.type, e.id, sealed, e.raw_length)
            copied.add(e.id)
            if builder.size >= targets[e.type]:
                upload(builder)
                builders[e.type] = PackBuilder()
    for builder in builders.values():
        if builder.entries:
            upload(builder)
    result.packs_repacked = len(done)
    return written, done


def collect(repo: Repository, now_ns: int, grace: float) -> GcResult:
    """Plan and execute one collection at once (after a backup, and in tests)."""
    return execute(plan(repo, now_ns, grace))
