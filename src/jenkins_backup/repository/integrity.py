"""Is a backup whole? Every tree reads back, every chunk is located, every pack is present.

Run before a restore or an export writes anything, and by ``latest`` to skip a damaged backup:
a backup that fails here fails with nothing touched.
"""

from __future__ import annotations

from jenkins_backup.errors import CorruptObject
from jenkins_backup.repository.config import SMALL_FILE
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import FILE
from jenkins_backup.repository.walk import MAX_ENTRIES, walk


def check_snapshot(
    repo: Repository, tree_id: bytes, *, max_entries: int = MAX_ENTRIES
) -> tuple[int, int]:
    """Verify every tree, that every chunk is located, and that every pack exists.

    Returns (files, bytes).
    """
    index = repo.index()
    needed: set[bytes] = set()
    files = total = 0
    max_chunk = max(SMALL_FILE, repo.config.chunker.max_size)
    for _, entries in walk(repo.read_tree, tree_id, max_entries=max_entries):
        for e in entries:
            if e.kind != FILE:
                continue
            files += 1
            total += e.size
            size = 0
            for cid in e.content:
                loc = index.get(cid) or repo.find(cid)
                if loc is None:
                    raise CorruptObject(f"data of {e.name!r} is missing from the repository")
                if loc.raw_length > max_chunk:
                    raise CorruptObject(f"data of {e.name!r} has an oversized chunk")
                needed.add(loc.pack)
                size += loc.raw_length
            if size != e.size:
                raise CorruptObject(f"size of {e.name!r} does not match its data")
    present = set(repo.packs())
    missing = needed - present
    if missing:
        raise CorruptObject(f"{len(missing)} pack(s) of this backup are missing")
    return files, total
