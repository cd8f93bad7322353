"""Repository access: open or create, read verified blobs, list and commit snapshots."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import blake3

from jenkins_backup.errors import (
    CorruptObject,
    ObjectNotFound,
    RepositoryError,
    SnapshotVanished,
    WrongKey,
)
from jenkins_backup.repository import config as cfg
from jenkins_backup.repository import layout
from jenkins_backup.repository.codec import Codec
from jenkins_backup.repository.index import Index, Location, check_encoded
from jenkins_backup.repository.layout import Tombstone, pack_key
from jenkins_backup.repository.pack import (
    TRAILER_SIZE,
    TREE,
    BlobEntry,
    decode_header,
    parse_trailer,
)
from jenkins_backup.repository.snapshot import (
    Snapshot,
    SnapshotRef,
    decode_snapshot,
    encode_snapshot,
)
from jenkins_backup.repository.tree import MAX_TREE_BYTES, Entry, decode_tree
from jenkins_backup.storage.base import ObjectInfo, Storage

log = logging.getLogger(__name__)
MAX_INDEX_BYTES = 2 << 30
# Index records are mostly random ids, which do not compress: a plaintext far larger than its
# sealed form is a decompression bomb, refused before it is inflated.
_INDEX_RATIO = 16


def index_limit(sealed_length: int) -> int:
    """The largest plaintext an index file or condemned list of this sealed size may have."""
    return min(MAX_INDEX_BYTES, _INDEX_RATIO * sealed_length + (1 << 20))


_TREE_CACHE_BYTES = 64 << 20
_DECODED_ENTRIES = 300_000  # roughly 100 MB of decoded entries at most

# Builds the codec from the config; the encryption layer plugs in here.
CodecFactory = Callable[[cfg.RepoConfig], Codec]


def plain_codec(config: cfg.RepoConfig) -> Codec:
    if config.encryption is not None:
        raise WrongKey(
            "repository is encrypted: set BACKUP_ENCRYPTION_KEY or BACKUP_ENCRYPTION_KEY_FILE"
        )
    return Codec()


class Repository:
    def __init__(self, storage: Storage, config: cfg.RepoConfig, codec: Codec) -> None:
        self.storage = storage
        self.config = config
        self.codec = codec
        self._index: Index | None = None
        self._tree_index: Index | None = None
        self._index_plain: dict[str, bytes] = {}  # kept between a trees-only and a full load
        self._condemned_index: Index | None = None
        self._unindexed_index: Index | None = None
        self._lock_damaged = threading.Lock()
        #: Index files skipped as damaged by this process (``repair`` replaces them).
        self.damaged_index_files: set[str] = set()
        self._lock = threading.Lock()
        self._pack_cache: OrderedDict[bytes, bytes] = OrderedDict()
        # Tree packs whose bytes fail their name: each tree in them is checked against its id.
        self._rotten: set[bytes] = set()
        self._cached_bytes = 0
        self._decoded: OrderedDict[bytes, list[Entry]] = OrderedDict()
        self._decoded_entries = 0

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, storage: Storage, codec_factory: CodecFactory = plain_codec) -> Repository:
        try:
            raw = storage.get(cfg.KEY)
        except ObjectNotFound as exc:
            raise RepositoryError(f"no repository at {storage.describe()}") from exc
        config = cfg.decode_config(raw)
        return cls(storage, config, codec_factory(config))

    @classmethod
    def open_or_create(
        cls,
        storage: Storage,
        codec_factory: CodecFactory = plain_codec,
        new_config: Callable[[], cfg.RepoConfig] = cfg.new_config,
    ) -> Repository:
        # Two first backups may race: create-only makes one config win, both then read it.
        if storage.stat(cfg.KEY) is None and storage.put(
            cfg.KEY, cfg.encode_config(new_config()), create_only=True
        ):
            log.info("created repository at %s", storage.describe())
        return cls.open(storage, codec_factory)

    def fresh(self) -> Repository:
        """The same repository with nothing cached: a view of the store as it is now."""
        return Repository(self.storage, self.config, self.codec)

    @staticmethod
    def exists(storage: Storage) -> bool:
        return storage.stat(cfg.KEY) is not None

    # -- index -----------------------------------------------------------------------------

    def index(self) -> Index:
        """The merged index of every blob, loaded on first use (unchanged backups skip it)."""
        with self._lock:
            if self._index is None:
                index = Index()
                keys = list(self._index_plain) or self.index_files()
                self._load_index_files(index, keys)
                self._index = index
                self._tree_index = None
                self._index_plain.clear()
            return self._index

    def _trees(self) -> Index:
        """Where trees live: parsed from the index files without their (many) data entries."""
        with self._lock:
            if self._index is not None:
                return self._index
            if self._tree_index is None:
                index = Index()
                self._load_index_files(index, self.index_files(), only_type=TREE, keep_plain=True)
                self._tree_index = index
            return self._tree_index

    def _load_index_files(
        self, index: Index, keys: list[str], only_type: int | None = None, keep_plain: bool = False
    ) -> None:
        def load(key: str) -> bytes | None:
            cached = self._index_plain.get(key)
            if cached is not None:
                return cached
            # A cache, not the truth: a damaged file is skipped, and what it listed is found
            # from the packs' own headers (docs/FORMAT.md, "Index files are caches").
            try:
                plain = self.read_list(key)
                check_encoded(plain)
            except ObjectNotFound:
                return None  # removed by a concurrent prune after it was merged elsewhere
            except CorruptObject as exc:
                log.warning("skipping damaged index file %s: %s", key, exc)
                with self._lock_damaged:
                    self.damaged_index_files.add(key)
                return None
            return plain

        with ThreadPoolExecutor(max_workers=8) as pool:
            for key, plain in zip(keys, pool.map(load, keys), strict=True):
                if plain is None:
                    continue
                index.add_encoded(plain, only_type)
                if keep_plain:
                    self._index_plain[key] = plain

    def read_list(self, key: str) -> bytes:
        """The verified plaintext of an index file or a condemned list (named by its hash)."""
        sealed = self.storage.get(key)
        plain = self.codec.unseal(sealed, index_limit(len(sealed)))
        if self.codec.blob_id(plain).hex() != layout.object_name(key):
            raise CorruptObject(f"{key} fails its hash check")
        return plain

    def write_index(self, plain: bytes | memoryview, damaged: Collection[str] = ()) -> str:
        """Write an index file (create-only). A rebuilt index may hash to the name of the
        damaged file it replaces: that object is overwritten with the right bytes for its name.
        """
        key = layout.index_key(self.codec.blob_id(plain))
        replace = key in damaged or key in self.damaged_index_files
        self.storage.put(key, self.codec.seal(plain), create_only=not replace)
        if replace:
            with self._lock_damaged:
                self.damaged_index_files.discard(key)
        return key

    # -- blobs -----------------------------------------------------------------------------

    def find(self, blob_id: bytes) -> Location | None:
        """Where a blob is: the index, else a pack that prune condemned but has not deleted yet
        (a backup that deduplicated against it may reference it until the next prune)."""
        loc = self.index().get(blob_id) or self._condemned().get(blob_id)
        return loc if loc is not None else self.unindexed().get(blob_id)

    def unindexed(self) -> Index:
        """Blobs of stored packs that no index file or condemned list names, from the packs'
        headers: what a damaged or deleted index file listed. Read once, on the first miss
        (a reader misses only when something is damaged: the backup's lookups do not come here).
        """
        index, condemned = self.index(), self._condemned()
        with self._lock:
            if self._unindexed_index is not None:
                return self._unindexed_index
        known = index.packs() | condemned.packs()
        found = Index()
        for pack_id, info in self.packs().items():
            if pack_id in known:
                continue
            try:
                found.add_pack(pack_id, read_pack_header(self, pack_id, info.size))
            except (CorruptObject, ObjectNotFound) as exc:
                log.warning("ignoring unreadable pack %s: %s", pack_id.hex()[:16], exc)
        with self._lock:
            if self._unindexed_index is None:
                self._unindexed_index = found
            return self._unindexed_index

    def _condemned(self) -> Index:
        """The index of condemned packs (``condemned/<time>/<id>``), loaded on first need."""
        with self._lock:
            if self._condemned_index is None:
                index = Index()
                for key in self.condemned_lists():
                    try:
                        index.add_encoded(self.read_list(key))
                    except ObjectNotFound:
                        continue  # resolved by a prune meanwhile
                self._condemned_index = index
            return self._condemned_index

    def locate(self, blob_id: bytes) -> Location:
        loc = self.find(blob_id)
        if loc is None:
            raise CorruptObject(f"blob {blob_id.hex()[:16]} is not in the index")
        return loc

    def read_blob(self, blob_id: bytes) -> bytes:
        loc = self.locate(blob_id)
        try:
            sealed = self.storage.get_range(pack_key(loc.pack), loc.offset, loc.length)
        except ObjectNotFound as exc:
            raise CorruptObject(f"pack {loc.pack.hex()[:16]} is missing") from exc
        if len(sealed) != loc.length:
            raise CorruptObject(f"pack {loc.pack.hex()[:16]} is truncated")
        return self.codec.unseal_verified(sealed, blob_id, loc.raw_length)

    def read_tree(self, tree_id: bytes) -> list[Entry]:
        """Read and validate a tree. Decoded trees are cached, bounded by their entry count:
        restore, verify and prune walk the same trees more than once."""
        with self._lock:
            cached = self._decoded.get(tree_id)
            if cached is not None:
                self._decoded.move_to_end(tree_id)
                return cached
        entries = decode_tree(self.read_tree_bytes(tree_id))
        with self._lock:
            if tree_id not in self._decoded:
                self._decoded[tree_id] = entries
                self._decoded_entries += len(entries) + 1
            while self._decoded_entries > _DECODED_ENTRIES and len(self._decoded) > 1:
                self._decoded_entries -= len(self._decoded.popitem(last=False)[1]) + 1
        return entries

    def read_tree_bytes(self, tree_id: bytes, *, verify: bool = True) -> bytes:
        """A tree's plaintext; whole tree packs are cached (neighbours are read next).

        A cached pack's bytes were checked against its name when loaded; ``verify`` also checks
        the tree against its own id (the chain from the snapshot that restore relies on). The
        backup's look at its parent's trees skips that second hash, unless the pack failed its
        name: then every tree read from it is checked against its id, so a damaged tree fails
        alone and its neighbours stay readable.
        """
        loc = (
            self._trees().get(tree_id)
            or self._condemned().get(tree_id)
            or self.unindexed().get(tree_id)
        )
        if loc is None:
            raise CorruptObject(f"tree {tree_id.hex()[:16]} is not in the index")
        if loc.raw_length > MAX_TREE_BYTES:  # refused before anything is inflated
            raise CorruptObject(f"tree {tree_id.hex()[:16]} is announced oversized")
        with self._lock:
            pack = self._pack_cache.get(loc.pack)
            if pack is not None:
                self._pack_cache.move_to_end(loc.pack)
        if pack is None:
            try:
                pack = self.storage.get(pack_key(loc.pack))
            except ObjectNotFound as exc:
                raise CorruptObject(f"pack {loc.pack.hex()[:16]} is missing") from exc
            if blake3.blake3(pack).digest() != loc.pack:
                # Bit rot in one tree must not cost its neighbours: keep the pack, and check
                # every tree read from it against its own id instead.
                log.warning("tree pack %s fails its hash check", loc.pack.hex()[:16])
                with self._lock:
                    self._rotten.add(loc.pack)
            with self._lock:
                if loc.pack not in self._pack_cache:
                    self._pack_cache[loc.pack] = pack
                    self._cached_bytes += len(pack)
                while self._cached_bytes > _TREE_CACHE_BYTES and len(self._pack_cache) > 1:
                    self._cached_bytes -= len(self._pack_cache.popitem(last=False)[1])
        if loc.offset + loc.length > len(pack):
            raise CorruptObject(f"pack {loc.pack.hex()[:16]} is truncated")
        sealed = memoryview(pack)[loc.offset : loc.offset + loc.length]
        if verify or loc.pack in self._rotten:
            return self.codec.unseal_verified(sealed, tree_id, loc.raw_length)
        plain = self.codec.unseal(sealed, loc.raw_length)
        if len(plain) != loc.raw_length:
            raise CorruptObject(f"tree {tree_id.hex()[:16]} has the wrong length")
        return plain

    # -- listings (keys as repository/layout.py spells them) --------------------------------

    def packs(self) -> dict[bytes, ObjectInfo]:
        """Every stored pack, by id, with its size and the store's time stamp."""
        found: dict[bytes, ObjectInfo] = {}
        for info in self.storage.list(layout.DATA):
            pack_id = layout.pack_id_from_key(info.key)
            if pack_id is not None:
                found[pack_id] = info
        return found

    def index_files(self) -> list[str]:
        """Keys of the index files, sorted."""
        return sorted(i.key for i in self.storage.list(layout.INDEX))

    def condemned_lists(self) -> list[str]:
        """Keys of the condemned lists, sorted (oldest condemnation first)."""
        return sorted(i.key for i in self.storage.list(layout.CONDEMNED))

    def tombstones(self) -> list[Tombstone]:
        """Every forgotten snapshot whose tombstone prune has not removed yet, with the store's
        time stamp (a forgetter's slow clock must not age a tombstone early)."""
        found: list[Tombstone] = []
        for info in self.storage.list(layout.FORGOTTEN):
            stone = layout.parse_tombstone(info.key)
            if stone is not None:
                found.append(replace(stone, stamped_ns=layout.written_ns(info)))
        return sorted(found)

    def stored_bytes(self) -> int:
        """The size of everything the repository stores (not other files at its location)."""
        return sum(i.size for p in layout.STORED for i in self.storage.list(p))

    # -- snapshots -------------------------------------------------------------------------

    def snapshot_refs(self) -> list[SnapshotRef]:
        """Every committed snapshot, oldest commit first; a number replaced later is hidden."""
        newest: dict[int, SnapshotRef] = {}
        for r in self.all_snapshot_refs():
            newest[r.number] = r
        return sorted(newest.values())

    def all_snapshot_refs(self) -> list[SnapshotRef]:
        """Including replaced ones, which a backup deletes after committing their successor."""
        found = (layout.parse_snapshot_key(i.key) for i in self.storage.list(layout.SNAPSHOTS))
        return sorted(r for r in found if r)

    def load_snapshot(self, ref: SnapshotRef) -> Snapshot:
        try:
            sealed = self.storage.get(ref.key)
        except ObjectNotFound as exc:
            raise SnapshotVanished(f"snapshot {ref.number} vanished") from exc
        plain = self.codec.unseal(sealed, 1 << 20)
        if self.codec.blob_id(plain) != ref.id:
            raise CorruptObject(f"backup {ref.number} fails its hash check")
        snap = decode_snapshot(plain)
        if snap.number != ref.number or snap.time_ns != ref.time_ns:
            raise CorruptObject(f"backup {ref.number} does not match its name")
        return snap

    def commit(self, snap: Snapshot) -> SnapshotRef:
        """Write the snapshot object: the single step that makes a backup visible.

        Commit times are monotonic per repository: the time is raised to one nanosecond past
        the newest snapshot's, so the backup committed last is the newest whatever the writer's
        clock says (a fast clock once must not hide every later backup, nor keep the old backup
        under a re-used number). The ref returned carries the time stored.
        """
        newest = max((r.time_ns for r in self.all_snapshot_refs()), default=0)
        if snap.time_ns <= newest:
            snap = replace(snap, time_ns=newest + 1)
        plain = encode_snapshot(snap)
        snap_id = self.codec.blob_id(plain)
        key = layout.snapshot_key(snap.time_ns, snap.number, snap_id)
        self.storage.put(key, self.codec.seal(plain), create_only=True)
        return SnapshotRef(snap.time_ns, snap.number, snap_id, key)

    def remove_snapshots(self, refs: Iterable[SnapshotRef]) -> None:
        """Forget snapshots, leaving a dated tombstone first: a backup in flight may have taken
        one as its parent, so prune keeps their data for a grace period (docs/FORMAT.md)."""
        for r in refs:
            try:
                sealed = self.storage.get(r.key)
            except ObjectNotFound:
                continue
            self.storage.put(layout.tombstone_key(time.time_ns(), r), sealed)
            self.storage.delete(r.key)


def read_pack_header(repo: Repository, pack_id: bytes, size: int) -> list[BlobEntry]:
    """Read the blob list stored at the end of a pack (for adoption, repair and recovery)."""
    key = pack_key(pack_id)
    tail = repo.storage.get_range(key, -TRAILER_SIZE, TRAILER_SIZE)
    length = parse_trailer(tail, size)
    sealed = repo.storage.get_range(key, -(TRAILER_SIZE + length), length)
    entries = decode_header(repo.codec.unseal(sealed, 64 << 20))
    limit = size - TRAILER_SIZE - length
    for e in entries:
        if e.offset + e.length > limit:
            raise CorruptObject(f"pack {pack_id.hex()[:16]} header points past its data")
    return entries


def stamp(repo: Repository, key: str) -> ObjectInfo:
    """Write an empty object at ``key`` and return what the store says of it: its time stamp is
    now by the store's clock, which no pod's clock can move (prune's now, a backup's ages)."""
    repo.storage.put(key, b"")
    info = repo.storage.stat(key)
    if info is None:
        raise RepositoryError(f"{key} vanished just after it was written")
    return info


def find_orphans(
    repo: Repository, index: Index, max_age: float | None = None
) -> list[tuple[bytes, list[BlobEntry]]]:
    """Packs present in storage but in no index file: leftovers of interrupted backups.

    With ``max_age`` older packs are ignored: prune may be deleting them (docs/FORMAT.md). Ages
    are measured on the later of the local clock and the store's, so a local clock that is
    behind cannot make an old pack, one prune may delete, look young enough to reuse.
    """
    known = index.packs()
    candidates = [(p, info) for p, info in repo.packs().items() if p not in known]
    found: list[tuple[bytes, list[BlobEntry]]] = []
    if not candidates:
        return found
    oldest = None
    if max_age is not None:
        store_now = layout.written_ns(stamp(repo, layout.CLOCK_PROBE)) / 1e9
        oldest = max(time.time(), store_now) - max_age
    for pack_id, info in candidates:
        if oldest is not None and info.mtime < oldest:
            continue
        try:
            found.append((pack_id, read_pack_header(repo, pack_id, info.size)))
        except (CorruptObject, ObjectNotFound) as exc:
            log.warning("ignoring unreadable pack %s: %s", pack_id.hex()[:16], exc)
    return found
