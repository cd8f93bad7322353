"""The verify operation: is each backup complete, and does every byte read back right?

Quick mode reads the trees and checks that every object they reference is indexed and stored.
Full mode also reads every referenced pack once, checks that its content matches its name, and
checks the hash of every blob a backup needs.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field

import blake3

from jenkins_backup.errors import CorruptObject, ObjectNotFound, RepositoryError, SnapshotNotFound
from jenkins_backup.operations.common import existing_repository, find_number
from jenkins_backup.repository.layout import pack_key
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.snapshot import SnapshotRef
from jenkins_backup.repository.tree import DIR, FILE, Entry
from jenkins_backup.repository.walk import Parts, measure, walk
from jenkins_backup.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class VerifyResult:
    checked: list[int] = field(default_factory=list)  # backup numbers, oldest commit first
    problems: list[str] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)
    bytes_read: int = 0
    damaged_paths: list[str] = field(default_factory=list)  # "N: path", files with bad data
    not_checked: str = ""  # what this mode did not check, said in its output


def _show(name: bytes) -> str:
    return repr(os.fsdecode(name))


class _Verifier:
    def __init__(self, repo: Repository, stored: set[bytes]) -> None:
        self.repo = repo
        self.stored = stored
        # pack -> blob ids a backup needs from it, and the backups that need it
        self.needed: dict[bytes, set[bytes]] = defaultdict(set)
        self.users: dict[bytes, set[int]] = defaultdict(set)
        self.bad: set[bytes] = set()  # needed blobs that fail their hash check

    def snapshot(self, ref: SnapshotRef) -> list[str]:
        """Problems of one backup (quick checks); records what full mode must read."""
        problems: list[str] = []
        try:
            snap = self.repo.load_snapshot(ref)
        except (CorruptObject, RepositoryError, ObjectNotFound) as exc:
            return [f"backup {ref.number}: snapshot object: {exc}"]
        missing_packs: set[bytes] = set()

        def unreadable(parts: Parts, exc: Exception) -> None:
            problems.append(
                f"backup {ref.number}: directory {_show(b'/'.join(parts) or b'/')}: {exc}"
            )

        def need_tree(tree_id: bytes) -> None:
            loc = self.repo.find(tree_id)
            if loc is not None:
                self._need(loc.pack, tree_id, ref.number, missing_packs)

        need_tree(snap.tree)

        def readable(tree_id: bytes) -> list[Entry]:
            try:
                return self.repo.read_tree(tree_id)
            except (CorruptObject, ObjectNotFound):
                return []  # reported by the walk below

        try:
            measure(readable, snap.tree)  # the bounds, before the walk: a DAG cannot blow up
            # Each distinct tree once: a subtree shared by many directories is checked once.
            seen: set[bytes] = set()
            walked = walk(self.repo.read_tree, snap.tree, on_error=unreadable, seen=seen)
            for parts, entries in walked:
                for e in entries:
                    if e.kind == DIR:
                        need_tree(e.subtree)
                    elif e.kind == FILE:
                        self._file(
                            ref.number, b"/".join((*parts, e.name)), e, problems, missing_packs
                        )
        except CorruptObject as exc:  # a bound of the walk: the backup is refused whole
            problems.append(f"backup {ref.number}: {exc}")
        problems += [
            f"backup {ref.number}: pack {p.hex()[:16]} is missing" for p in sorted(missing_packs)
        ]
        return problems

    def _file(
        self, number: int, rel: bytes, e: Entry, problems: list[str], missing: set[bytes]
    ) -> None:
        size = 0
        for cid in e.content:
            cloc = self.repo.find(cid)
            if cloc is None:
                problems.append(f"backup {number}: data of {_show(rel)} is not in the index")
                return
            size += cloc.raw_length
            self._need(cloc.pack, cid, number, missing)
        if size != e.size:
            problems.append(f"backup {number}: size of {_show(rel)} does not match its data")

    def name_damaged(self, refs: list[SnapshotRef], result: VerifyResult) -> None:
        """Name the files whose data fails its hash check (a second walk, only on damage)."""
        users = {
            n
            for pack in {self.repo.find(b) for b in self.bad}
            if pack
            for n in self.users[pack.pack]
        }
        for ref in refs:
            if ref.number not in users:
                continue
            snap = self.repo.load_snapshot(ref)
            for parts, entries in walk(self.repo.read_tree, snap.tree, on_error=lambda p, e: None):
                for e in entries:
                    if e.kind == FILE and any(c in self.bad for c in e.content):
                        path = os.fsdecode(b"/".join((*parts, e.name)))
                        result.damaged_paths.append(f"{ref.number}: {path}")
                        result.problems.append(
                            f"backup {ref.number}: {_show(b'/'.join((*parts, e.name)))} is damaged"
                        )

    def _need(self, pack: bytes, blob_id: bytes, number: int, missing: set[bytes]) -> None:
        if pack not in self.stored:
            missing.add(pack)
            return
        self.needed[pack].add(blob_id)
        self.users[pack].add(number)

    def read_packs(self, result: VerifyResult) -> None:
        """Read each needed pack once; check its name and every needed blob's hash."""
        for pack, blobs in sorted(self.needed.items()):
            who = ", ".join(str(n) for n in sorted(self.users[pack]))
            try:
                data = self.repo.storage.get(pack_key(pack))
            except ObjectNotFound:
                result.problems.append(f"pack {pack.hex()[:16]} vanished (backups {who})")
                result.damaged.extend(self.users[pack])
                continue
            result.bytes_read += len(data)
            if blake3.blake3(data).digest() == pack:
                continue  # the name is the hash of the content: every blob in it is intact
            bad = 0
            for blob_id in blobs:
                loc = self.repo.find(blob_id)
                if loc is None or loc.pack != pack:
                    continue
                sealed = data[loc.offset : loc.offset + loc.length]
                try:
                    self.repo.codec.unseal_verified(sealed, blob_id, loc.raw_length)
                except CorruptObject:
                    bad += 1
                    self.bad.add(blob_id)
            result.problems.append(
                f"pack {pack.hex()[:16]} is damaged: {bad} needed blob(s) fail their hash check"
                f" (backups {who})"
            )
            if bad:
                result.damaged.extend(self.users[pack])


def verify(settings: Settings, number: int | None = None, *, quick: bool = False) -> VerifyResult:
    """Verify backup ``number``, or every backup; problems are listed, never raised."""
    result = VerifyResult()
    repo = existing_repository(settings)
    if number is not None:
        ref = find_number(repo, number)
        if ref is None:
            raise SnapshotNotFound(f"backup {number} does not exist")
        refs = [ref]
    else:
        refs = repo.snapshot_refs()
    stored = set(repo.packs())
    verifier = _Verifier(repo, stored)
    for ref in refs:
        problems = verifier.snapshot(ref)
        result.checked.append(ref.number)
        if problems:
            result.damaged.append(ref.number)
            result.problems += problems
    if quick:
        result.not_checked = (
            f"the content of {len(verifier.needed)} pack(s): blobs were not read back against"
            " their hashes (run verify without --quick)"
        )
    else:
        verifier.read_packs(result)
        if verifier.bad:
            verifier.name_damaged(refs, result)
    result.damaged = sorted(set(result.damaged))
    return result
