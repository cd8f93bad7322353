"""Is a backup whole (every tree reads back, every chunk is located, every pack is present),
and the index rebuilt from the packs when index files are damaged or missing.

Run before a restore or an export writes anything, and by ``latest`` to skip a damaged backup:
a backup that fails here fails with nothing touched.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from jenkins_backup.errors import CorruptObject, ObjectNotFound, RepositoryError
from jenkins_backup.repository.config import SMALL_FILE
from jenkins_backup.repository.index import encode_index
from jenkins_backup.repository.pack import BlobEntry
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import FILE, Entry
from jenkins_backup.repository.walk import MAX_DEPTH, MAX_ENTRIES, Parts, measure, walk

log = logging.getLogger(__name__)


def check_snapshot(
    repo: Repository,
    tree_id: bytes,
    *,
    max_entries: int = MAX_ENTRIES,
    max_depth: int = MAX_DEPTH,
    damaged: list[str] | None = None,
) -> tuple[int, int]:
    """Verify every tree, that every chunk is located, and that every pack exists.

    Each distinct tree is read once (``measure``, which checks the bounds before anything is
    walked), and its files are checked as it is read. Returns (files, bytes) as a restore
    writes them.

    With ``damaged`` (a restore of one named backup, which writes what it can), bit rot is not
    fatal: a directory whose tree cannot be read is appended to it (``path/``) and a chunk or
    pack that is missing is left to the restore, which names the files that need it. What a
    hostile writer could forge (bounds, sizes, oversized chunks) still fails the whole check.
    ``tree_id`` may be a directory's (a partial restore checks the part it writes); its
    ``max_depth`` is then what is left below that directory.
    """

    def note(parts: Parts, exc: CorruptObject | ObjectNotFound) -> None:
        if damaged is not None and parts:
            damaged.append(os.fsdecode(b"/".join(parts)) + "/")

    on_error = note if damaged is not None else None
    repo.read_tree(tree_id)  # without its root directory a backup holds nothing to restore
    index = repo.index()
    needed: set[bytes] = set()
    max_chunk = max(SMALL_FILE, repo.config.chunker.max_size)

    def check_files(entries: list[Entry]) -> None:
        for e in entries:
            if e.kind != FILE:
                continue
            total = 0
            located = True
            for cid in e.content:
                loc = index.get(cid) or repo.find(cid)
                if loc is None:
                    if damaged is not None:
                        located = False
                        continue
                    raise CorruptObject(f"data of {e.name!r} is missing from the repository")
                if loc.raw_length > max_chunk:
                    raise CorruptObject(f"data of {e.name!r} has an oversized chunk")
                needed.add(loc.pack)
                total += loc.raw_length
            if located and total != e.size:
                raise CorruptObject(f"size of {e.name!r} does not match its data")

    # One read of each distinct tree: the bounds and the files' checks in the same pass.
    size = measure(
        repo.read_tree,
        tree_id,
        max_depth=max_depth,
        max_entries=max_entries,
        on_error=on_error,
        visit=check_files,
    )
    missing = needed - set(repo.packs())
    if missing and damaged is None:
        raise CorruptObject(f"{len(missing)} pack(s) of this backup are missing")
    return size.files, size.bytes


@dataclass(frozen=True)
class RepairStats:
    damaged_files: int  # index files skipped as damaged, and removed
    packs_indexed: int  # packs indexed again from their own headers
    blobs_indexed: int


def rebuild_index(repo: Repository) -> RepairStats:
    """Index again, from the packs' own headers, what the index files fail to list.

    Packs that no index file or condemned list names are either what a damaged or deleted index
    file listed, or leftovers of killed runs. With a damaged index file in view, every one is
    indexed again (prune deletes no unlisted pack while a damaged file is in view, so none is
    being deleted); otherwise only those holding a blob that a backup or young tombstone
    references (prune never deletes those). The damaged files are removed once the new index
    file is written. Safe to run at any time; a second run finds nothing to do.
    """
    index = repo.index()
    damaged = sorted(repo.damaged_index_files)
    recovered = repo.unindexed()
    wanted: set[bytes] = set()
    if damaged:
        wanted = recovered.packs()
    elif len(recovered):
        referenced = _referenced(repo)
        wanted = {loc.pack for blob_id, loc in recovered.items() if blob_id in referenced}
    by_pack: dict[bytes, list[BlobEntry]] = {p: [] for p in wanted}
    for blob_id, loc in recovered.items():
        if loc.pack in by_pack:
            by_pack[loc.pack].append(
                BlobEntry(loc.type, blob_id, loc.offset, loc.length, loc.raw_length)
            )
    for entries in by_pack.values():
        entries.sort(key=lambda e: e.offset)
    if by_pack:
        written = repo.write_index(encode_index(sorted(by_pack.items())), damaged)
        for pack_id, entries in by_pack.items():
            index.add_pack(pack_id, entries)
    for key in damaged:
        if not by_pack or key != written:
            repo.storage.delete(key)
    repo.damaged_index_files.difference_update(damaged)
    return RepairStats(len(damaged), len(by_pack), sum(len(e) for e in by_pack.values()))


def _referenced(repo: Repository) -> set[bytes]:
    """Every blob id that a backup or a tombstone references (trees and chunks)."""
    roots = [*repo.all_snapshot_refs(), *(t.stored for t in repo.tombstones())]
    trees: set[bytes] = set()
    chunks: set[bytes] = set()
    for ref in roots:
        try:
            root = repo.load_snapshot(ref).tree
        except (CorruptObject, ObjectNotFound):
            continue

        def skip(parts: Parts, exc: Exception) -> None:
            log.warning("an unreadable directory is not searched: %s", exc)

        try:
            for _, entries in walk(repo.read_tree, root, on_error=skip, seen=trees):
                for e in entries:
                    if e.kind == FILE:
                        chunks.update(e.content)
        except CorruptObject as exc:
            log.warning("backup %d is not searched whole: %s", ref.number, exc)
    return trees | chunks


def check_still_stored(
    repo: Repository, tree_id: bytes, seconds: float, why: str | None = None
) -> None:
    """Before committing a backup that ran ``seconds``, longer than half the prune grace (a
    paused pod), or while ``why`` (a prune --now ran): prune may have deleted data it
    references, which the protocol's T < G/2 no longer excludes. Checked against the store as
    it is now, not the backup's caches."""
    why = why or f"the backup ran {seconds:.0f} s, longer than half the prune grace"
    try:
        check_snapshot(repo.fresh(), tree_id)
    except CorruptObject as exc:
        raise RepositoryError(
            f"{why}, and data it references is gone ({exc}); nothing was committed: run it again"
        ) from exc
