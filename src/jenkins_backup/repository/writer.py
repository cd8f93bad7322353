"""Writing blobs: deduplicate, seal, pack, upload in parallel, then record an index file.

Packs are uploaded create-only under their content hash while the backup runs; nothing refers
to them until the index file and then the snapshot are written, so an interrupted backup leaves
only unreferenced packs (adopted by the next backup or collected by prune).

Memory per new blob is compact, not Python objects: its id in the run's IdSet (a plain set for
the latest half million, 32 bytes each in an IdTable before that) and its 45-byte entry in the
index file being built.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from jenkins_backup.repository.idtable import IdSet
from jenkins_backup.repository.index import MAGIC, Index, encode_pack
from jenkins_backup.repository.layout import pack_key
from jenkins_backup.repository.pack import DATA, TREE, BlobEntry, PackBuilder
from jenkins_backup.repository.repo import Repository, find_orphans

DATA_PACK_TARGET = 8 << 20
TREE_PACK_TARGET = 2 << 20
# A backup of millions of new blobs writes several index files of about a million blobs each:
# sealing one makes two copies of it, and those copies stay this small.
INDEX_FILE_BYTES = 48 << 20


class BlobWriter:
    """Thread-safe sink for new blobs of one backup."""

    def __init__(
        self, repo: Repository, uploads: int = 4, adopt_max_age: float | None = None
    ) -> None:
        self.repo = repo
        # Only orphans younger than this are adopted: older ones may be in prune's hands.
        self.adopt_max_age = adopt_max_age
        self._index: Index | None = None  # loaded at the first new blob: unchanged backups skip it
        self._lock = threading.Lock()
        self._added = IdSet()  # blobs of this run, uploaded or not yet
        self._builders = {DATA: PackBuilder(), TREE: PackBuilder()}
        self._targets = {DATA: DATA_PACK_TARGET, TREE: TREE_PACK_TARGET}
        self._pool = ThreadPoolExecutor(max_workers=uploads, thread_name_prefix="upload")
        self._uploads: list[Future[None]] = []
        # Bounds memory: at most this many finished packs wait for upload at once.
        self._slots = threading.BoundedSemaphore(uploads * 2)
        # The index files in the making: MAGIC, then one part per uploaded or adopted pack.
        self._index_files = [bytearray(MAGIC)]
        self._parts = 0
        self.bytes_added = 0
        self.blobs_added = 0

    def _load_index(self) -> Index:
        index = self.repo.index()
        # Packs uploaded by an interrupted or concurrent backup are not indexed yet: adopt them,
        # so their data is reused instead of uploaded again. They join this run's blobs, not the
        # shared index, which the walk may be reading meanwhile (it is indexed at flush).
        for pack_id, entries in find_orphans(self.repo, index, self.adopt_max_age):
            for e in entries:
                self._added.add(e.id)
            self._record(encode_pack(pack_id, entries))
        return index

    def _record(self, part: bytes) -> None:
        """Note a pack's part of this run's index file (caller holds the lock)."""
        current = self._index_files[-1]
        if len(current) > len(MAGIC) and len(current) + len(part) > INDEX_FILE_BYTES:
            current = bytearray(MAGIC)
            self._index_files.append(current)
        current += part
        self._parts += 1

    def add(self, type_: int, blob_id: bytes, data: bytes | memoryview) -> bool:
        """Store ``data`` unless a blob with this id exists; True when it was new."""
        with self._lock:
            if self._index is None:
                self._index = self._load_index()
            if blob_id in self._index or not self._added.add(blob_id):
                return False
        sealed = self.repo.codec.seal(data)
        finished = None
        with self._lock:
            builder = self._builders[type_]
            builder.add(type_, blob_id, sealed, len(data))
            self.blobs_added += 1
            if builder.size >= self._targets[type_]:
                finished = builder
                self._builders[type_] = PackBuilder()
        if finished is not None:
            self._submit(finished)
        return True

    def _submit(self, builder: PackBuilder) -> None:
        self._slots.acquire()
        try:
            pack_id, data, entries = builder.finish(self.repo.codec)
        except BaseException:
            self._slots.release()
            raise
        fut = self._pool.submit(self._upload, pack_id, data, entries)
        with self._lock:
            self._uploads.append(fut)

    def _upload(self, pack_id: bytes, data: bytes, entries: list[BlobEntry]) -> None:
        try:
            self.repo.storage.put(pack_key(pack_id), data, create_only=True)
            part = encode_pack(pack_id, entries)
            with self._lock:
                self._record(part)
                self.bytes_added += len(data)
        finally:
            self._slots.release()

    def flush(self) -> list[str]:
        """Upload what is buffered, wait for every upload, write the index files; return their
        keys."""
        with self._lock:
            builders = [b for b in self._builders.values() if b.entries]
            self._builders = {DATA: PackBuilder(), TREE: PackBuilder()}
        for b in builders:
            self._submit(b)
        with self._lock:
            uploads, self._uploads = self._uploads, []
        for fut in uploads:
            fut.result()
        if not self._parts:
            return []
        files, self._index_files, self._parts = self._index_files, [bytearray(MAGIC)], 0
        # Indexed below: later blobs of this writer deduplicate against the index. Dropped first,
        # so that its memory is free before sealing copies the index files.
        self._added = IdSet()
        keys = []
        for plain in files:
            with memoryview(plain) as view:
                keys.append(self.repo.write_index(view))
            if self._index is not None:
                self._index.defer(plain)
        return keys

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
