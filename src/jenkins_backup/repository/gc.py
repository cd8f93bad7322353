"""Garbage collection without locks: mark from every snapshot, condemn, delete after a grace.

A pack no snapshot references is first *condemned*: listed in ``condemned/<time>/<id>`` and
dropped from the index, so that no backup starting later deduplicates against it. It is deleted
by a later run only when it has been condemned for longer than the grace period and is still
unreferenced; a backup that deduplicated against it just before has committed by then, so the
reference is seen and the pack is *rescued* (indexed again) instead. Forgotten snapshots leave
tombstones that count as references for the grace period (a backup in flight may use one as its
parent). The full argument, with the crash-safety order of the steps, is in docs/FORMAT.md.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from jenkins_backup.errors import CorruptObject, ObjectNotFound, RepositoryError
from jenkins_backup.repository.index import MAGIC, decode_index, encode_index
from jenkins_backup.repository.layout import (
    condemned_key,
    condemned_time,
    object_name,
    pack_key,
)
from jenkins_backup.repository.pack import (
    DATA,
    TREE,
    BlobEntry,
    PackBuilder,
)
from jenkins_backup.repository.repo import MAX_INDEX_BYTES, Repository, read_pack_header
from jenkins_backup.repository.snapshot import SnapshotRef
from jenkins_backup.repository.tree import FILE, Entry, decode_tree
from jenkins_backup.repository.walk import Parts, walk
from jenkins_backup.repository.writer import DATA_PACK_TARGET, TREE_PACK_TARGET
from jenkins_backup.storage.base import ObjectInfo

log = logging.getLogger(__name__)

#: Merge the index files into one when there are more than this many (loading many is slow).
CONSOLIDATE_INDEX_FILES = 32
#: Repack a pack when more than this fraction of its bytes is garbage.
REPACK_RATIO = 0.5
_TREE_CACHE_BYTES = 128 << 20
_LOAD_ATTEMPTS = 5

PackList = list[tuple[bytes, list[BlobEntry]]]


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
    blocked: str = ""  # why nothing was condemned or deleted (a damaged backup), or ""
    problems: list[str] = field(default_factory=list)


@dataclass
class _Listing:
    """The index and condemned lists, loaded as one consistent view."""

    index_keys: list[str]
    condemned_keys: list[str]
    indexed: dict[bytes, list[BlobEntry]]
    condemned: dict[bytes, list[BlobEntry]]  # condemned and not indexed again
    condemned_at: dict[bytes, int]  # newest condemnation time (ns) of each listed pack
    condemned_files: dict[str, set[bytes]]
    damaged: list[str]  # index files skipped as damaged: what they listed looks unlisted


def _read_list(repo: Repository, key: str) -> PackList:
    plain = repo.codec.unseal(repo.storage.get(key), MAX_INDEX_BYTES)
    if repo.codec.blob_id(plain).hex() != object_name(key):
        raise CorruptObject(f"{key} fails its hash check")
    return list(decode_index(plain))


def _read_index_file(repo: Repository, key: str, damaged: list[str]) -> PackList:
    """An index file's packs; a damaged one is skipped (an index file is a cache)."""
    try:
        return _read_list(repo, key)
    except CorruptObject as exc:
        log.warning("skipping damaged index file %s: %s", key, exc)
        damaged.append(key)
        return []


def _written_ns(info: ObjectInfo) -> int:
    """The latest time the object may have been written, in ns. S3 and Azure report whole
    seconds, truncated: an object stamped 12:00:00 may be from 12:00:00.99, and taking the stamp
    as is would make a backup's pack in flight look up to a second older than the grace."""
    mtime = info.mtime + 1.0 if float(info.mtime).is_integer() else info.mtime
    return int(mtime * 1e9)


def _load(repo: Repository) -> _Listing:
    """Load index and condemned lists; retry while a concurrent prune replaces them.

    A pack moves between lists by writing the new list before deleting the old one. Checking
    after loading that no list we loaded has gone makes the view consistent: every pack is seen
    where it is, never as an unlisted orphan.
    """
    for _ in range(_LOAD_ATTEMPTS):
        index_keys = repo.index_files()
        condemned_keys = repo.condemned_lists()
        damaged: list[str] = []
        try:
            index_lists = [_read_index_file(repo, k, damaged) for k in index_keys]
            condemned_lists = [_read_list(repo, k) for k in condemned_keys]
        except ObjectNotFound:
            continue
        if not set(index_keys) <= set(repo.index_files()):
            continue
        if not set(condemned_keys) <= set(repo.condemned_lists()):
            continue
        indexed: dict[bytes, list[BlobEntry]] = {}
        for packs in index_lists:
            for pack_id, entries in packs:
                indexed.setdefault(pack_id, entries)
        listing = _Listing(index_keys, condemned_keys, indexed, {}, {}, {}, damaged)
        for key, packs in zip(condemned_keys, condemned_lists, strict=True):
            at = condemned_time(key)
            listing.condemned_files[key] = {p for p, _ in packs}
            for pack_id, entries in packs:
                listing.condemned_at[pack_id] = max(at, listing.condemned_at.get(pack_id, 0))
                if pack_id not in indexed:
                    listing.condemned.setdefault(pack_id, entries)
        return listing
    raise RepositoryError("the index kept changing during prune (another prune?); run it again")


class _TreeReader:
    """Reads trees from indexed and condemned packs, caching whole tree packs."""

    def __init__(self, repo: Repository, where: dict[bytes, tuple[bytes, BlobEntry]]) -> None:
        self.repo = repo
        self.where = where
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0

    def read(self, tree_id: bytes) -> list[Entry]:
        found = self.where.get(tree_id)
        if found is None:
            raise CorruptObject(f"tree {tree_id.hex()[:16]} is not in the index")
        pack_id, e = found
        pack = self._cache.get(pack_id)
        if pack is None:
            try:
                pack = self.repo.storage.get(pack_key(pack_id))
            except ObjectNotFound as exc:
                raise CorruptObject(f"pack {pack_id.hex()[:16]} is missing") from exc
            self._cache[pack_id] = pack
            self._bytes += len(pack)
            while self._bytes > _TREE_CACHE_BYTES and len(self._cache) > 1:
                self._bytes -= len(self._cache.popitem(last=False)[1])
        else:
            self._cache.move_to_end(pack_id)
        if e.offset + e.length > len(pack):
            raise CorruptObject(f"pack {pack_id.hex()[:16]} is truncated")
        sealed = memoryview(pack)[e.offset : e.offset + e.length]
        return decode_tree(self.repo.codec.unseal_verified(sealed, tree_id, e.raw_length))


def mark(read: _TreeReader, roots: Iterable[tuple[str, bytes]], problems: list[str]) -> set[bytes]:
    """Every blob (trees and chunks) reachable from ``roots``; unreadable trees are problems."""
    trees: set[bytes] = set()
    chunks: set[bytes] = set()
    for label, root in roots:

        def unreadable(parts: Parts, exc: Exception, label: str = label) -> None:
            problems.append(f"{label}: {exc}")

        try:
            for _, entries in walk(read.read, root, on_error=unreadable, seen=trees):
                for e in entries:
                    if e.kind == FILE:
                        chunks.update(e.content)
        except CorruptObject as exc:  # beyond the walk's bounds: a damaged backup
            problems.append(f"{label}: {exc}")
    return trees | chunks


def _roots(
    repo: Repository, grace_ns: int, now_ns: int, problems: list[str]
) -> tuple[list[tuple[str, bytes]], list[str], int]:
    """Root trees of every snapshot and young tombstone; keys of expired tombstones.

    Snapshots are listed before tombstones: a forget writes its tombstone before deleting the
    snapshot, so a snapshot forgotten meanwhile is seen in one listing or the other.
    """
    refs: list[tuple[str, SnapshotRef]] = [
        (f"backup {r.number}", r) for r in repo.all_snapshot_refs()
    ]
    expired: list[str] = []
    pending = 0
    for stone in repo.tombstones():
        if now_ns - stone.forgotten_ns >= grace_ns:
            expired.append(stone.key)
        else:
            refs.append((f"forgotten backup {stone.ref.number}", stone.stored))
            pending += 1
    roots: list[tuple[str, bytes]] = []
    for label, ref in refs:
        try:
            roots.append((label, repo.load_snapshot(ref).tree))
        except CorruptObject as exc:
            if "vanished" in str(exc) and label.startswith("backup"):
                continue  # forgotten meanwhile: its tombstone is listed after this
            problems.append(f"{label}: {exc}")
    return roots, expired, pending


def collect(
    repo: Repository, grace: float, *, dry_run: bool = False, repack_ratio: float = REPACK_RATIO
) -> GcResult:
    """One garbage collection pass; see the module docstring and docs/FORMAT.md."""
    result = GcResult()
    now_ns = time.time_ns()
    grace_ns = int(grace * 1e9)
    tree_problems: list[str] = []
    roots, expired_tombstones, result.tombstones_pending = _roots(
        repo, grace_ns, now_ns, tree_problems
    )
    listing = _load(repo)
    stored = repo.packs()

    orphans = [p for p in stored if p not in listing.indexed and p not in listing.condemned_at]
    # Packs in no list: leftovers of killed runs, packs of backups in flight, or what a damaged
    # or deleted index file listed. Their headers say what they hold (usually few of them).
    unlisted: dict[bytes, list[BlobEntry]] = {}
    for pack_id in orphans:
        try:
            unlisted[pack_id] = read_pack_header(repo, pack_id, stored[pack_id].size)
        except (CorruptObject, ObjectNotFound):
            continue

    where: dict[bytes, tuple[bytes, BlobEntry]] = {}
    for source in (listing.indexed, listing.condemned, unlisted):
        for pack_id, entries in source.items():
            for e in entries:
                where.setdefault(e.id, (pack_id, e))
    referenced = mark(_TreeReader(repo, where), roots, tree_problems)

    live: dict[bytes, int] = defaultdict(int)
    missing: set[bytes] = set()
    for blob_id in referenced:
        found = where.get(blob_id)
        if found is None:
            missing.add(blob_id)
        else:
            live[found[0]] += found[1].length
    del where

    # Unlisted packs holding referenced blobs are indexed again. With a damaged index file in
    # view every unlisted pack may be one it listed, which a backup in flight may use: all are
    # indexed again (the usual condemnation applies to them later), and none is deleted now.
    recovered = {
        p: e for p, e in unlisted.items() if listing.damaged or any(b.id in referenced for b in e)
    }
    result.problems = list(tree_problems)
    if missing:  # known ids: their absence hides no reference, so collection goes on
        result.problems.append(f"{len(missing)} blob(s) that backups reference are missing")
    if tree_problems:
        result.blocked = "some backups are damaged or unreadable (run verify)"
        return result

    def old(pack_id: bytes) -> bool:
        return now_ns - _written_ns(stored[pack_id]) >= grace_ns

    condemn: list[bytes] = []
    repack: list[bytes] = []
    dropped: list[bytes] = []
    for pack_id, entries in listing.indexed.items():
        if pack_id not in stored:
            dropped.append(pack_id)  # indexed but gone: never let a backup dedup against it
            continue
        if not old(pack_id):
            continue
        total = sum(e.length for e in entries)
        if live[pack_id] == 0:
            condemn.append(pack_id)
        elif total - live[pack_id] > repack_ratio * total:
            repack.append(pack_id)
    rescued = {p: e for p, e in listing.condemned.items() if live[p] > 0 and p in stored}
    rescued.update(recovered)
    due = [
        p
        for p in listing.condemned
        if p not in rescued and p in stored and now_ns - listing.condemned_at[p] >= grace_ns
    ]
    if not listing.damaged:
        due += [p for p in orphans if p not in recovered and old(p)]

    result.packs_condemned = len(condemn) + len(repack)
    result.bytes_condemned = sum(stored[p].size for p in (*condemn, *repack))
    result.packs_rescued = len(rescued)
    result.packs_deleted = len(due)
    result.bytes_freed = sum(stored[p].size for p in due)
    result.packs_repacked = len(repack)
    result.tombstones_removed = len(expired_tombstones)
    if dry_run:
        return result

    # 1. Copy the live blobs of mostly-garbage packs into new packs (not referenced yet).
    new_packs, repack = _repack(repo, repack, listing.indexed, referenced, result)
    # 2. Record the condemnation before the index forgets the packs: a crash in between leaves
    #    them indexed, never as unlisted orphans that look deletable.
    gone_from_index = set(condemn) | set(repack) | set(dropped)
    if condemn or repack:
        plain = encode_index((p, listing.indexed[p]) for p in (*condemn, *repack))
        key = condemned_key(time.time_ns(), repo.codec.blob_id(plain))
        repo.storage.put(key, repo.codec.seal(plain), create_only=True)
    # 3. A new index covering every pack still live, then the index files it supersedes.
    indexed_after = set(listing.indexed) - gone_from_index
    if (
        gone_from_index
        or rescued
        or new_packs
        or listing.damaged
        or len(listing.index_keys) > CONSOLIDATE_INDEX_FILES
    ):
        packs: PackList = [(p, listing.indexed[p]) for p in sorted(indexed_after)]
        packs += sorted(rescued.items()) + new_packs
        new_key = repo.write_index(encode_index(packs) if packs else MAGIC, listing.damaged)
        for key in listing.index_keys:
            if key != new_key:
                repo.storage.delete(key)
        result.index_files_replaced = len(listing.index_keys)
        indexed_after |= set(rescued) | {p for p, _ in new_packs}
    # 4. Delete what has been condemned for longer than the grace period, and old orphans;
    #    never a pack the new index lists (packs are salted, so this is only a safeguard).
    due = [p for p in due if p not in indexed_after]
    for pack_id in due:
        repo.storage.delete(pack_key(pack_id))
    # 5. Condemned lists whose every pack is gone or indexed again have done their work.
    deleted = set(due)
    for key, listed in listing.condemned_files.items():
        if all(p in deleted or p in indexed_after or p not in stored for p in listed):
            repo.storage.delete(key)
    for key in expired_tombstones:
        repo.storage.delete(key)
    return result


def _repack(
    repo: Repository,
    packs: list[bytes],
    entries_of: dict[bytes, list[BlobEntry]],
    referenced: set[bytes],
    result: GcResult,
) -> tuple[PackList, list[bytes]]:
    """Copy the referenced blobs of ``packs`` (verified, still sealed) into new packs.

    Returns the new packs and the packs fully copied; a damaged pack is left as it is.
    """
    builders = {DATA: PackBuilder(), TREE: PackBuilder()}
    targets = {DATA: DATA_PACK_TARGET, TREE: TREE_PACK_TARGET}
    written: PackList = []
    copied: set[bytes] = set()

    def upload(builder: PackBuilder) -> None:
        pack_id, data, entries = builder.finish(repo.codec)
        repo.storage.put(pack_key(pack_id), data, create_only=True)
        written.append((pack_id, entries))
        result.bytes_repacked += len(data)

    done: list[bytes] = []
    for pack_id in packs:
        wanted = [e for e in entries_of[pack_id] if e.id in referenced and e.id not in copied]
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
