"""Jenkins items in a backup's trees: full names as Jenkins shows them, and their builds.

A job's full name ``folder/sub/job`` lives at ``jobs/folder/jobs/sub/jobs/job``; a branch of a
multibranch project ``mb/main`` at ``jobs/mb/branches/main``. Which container holds the next
name is read from the backup itself (a folder has ``jobs/``, a multibranch project
``branches/``), so the mapping needs the trees along the path only.

Builds are the numbered directories under an item's ``builds/``; the permalinks beside them
(``lastSuccessfulBuild`` ...) are links, not builds. The last build time is the mtime of the
newest build's directory, which Jenkins last touches when that build finishes: no file is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from jenkins_backup.errors import CorruptObject, PathNotFound
from jenkins_backup.repository.repo import Repository
from jenkins_backup.repository.tree import DIR, FILE, Entry
from jenkins_backup.repository.walk import MAX_DEPTH, MAX_ENTRIES, Parts

JOBS = b"jobs"
BRANCHES = b"branches"
BUILDS = b"builds"
CONFIG = b"config.xml"
NEXT_BUILD = b"nextBuildNumber"
CONTAINERS = (JOBS, BRANCHES)


@dataclass(frozen=True)
class Item:
    """A job, folder or multibranch project found in a backup."""

    full_name: str
    kind: str  # "job", "folder" or "multibranch"
    parts: Parts  # its directory, relative to JENKINS_HOME
    builds: tuple[int, ...]  # sorted build numbers
    last_build_ns: int | None  # mtime of the newest build's directory
    config: tuple[bytes, ...]  # chunk ids of config.xml: equal ids, equal configuration


def name_of(parts: Parts) -> str:
    """The full name of the item at ``parts`` (``jobs/a/jobs/b`` -> ``a/b``)."""
    return "/".join(p.decode("utf-8", "surrogateescape") for p in parts[1::2])


def _names(text: str) -> list[bytes]:
    names = [n for n in text.strip().strip("/").split("/") if n]
    if not names or any(n in (".", "..") for n in names):
        raise PathNotFound(f"{text!r} is not a job's full name")
    return [n.encode("utf-8", "surrogateescape") for n in names]


def _by_name(repo: Repository, tree: bytes) -> dict[bytes, Entry]:
    return {e.name: e for e in repo.read_tree(tree)}


def resolve_job(repo: Repository, root: bytes, full_name: str) -> tuple[Parts, Entry]:
    """The directory of the item ``full_name`` in a backup, and its tree entry."""
    names = _names(full_name)
    if 2 * len(names) > MAX_DEPTH:
        raise PathNotFound(f"no job {full_name!r} in this backup")
    parts: Parts = ()
    tree = root
    entry: Entry | None = None
    for name in names:
        here = _by_name(repo, tree)
        entry = None
        for container in CONTAINERS if parts else (JOBS,):
            holder = here.get(container)
            if holder is None or holder.kind != DIR:
                continue
            found = _by_name(repo, holder.subtree).get(name)
            if found is not None and found.kind == DIR:
                parts, entry = (*parts, container, name), found
                break
        if entry is None:
            raise PathNotFound(f"no job {full_name!r} in this backup")
        tree = entry.subtree
    assert entry is not None
    return parts, entry


def _item(repo: Repository, parts: Parts, here: dict[bytes, Entry]) -> Item | None:
    if CONFIG not in here and BUILDS not in here:
        return None  # not an item (a stray directory)
    kind = "job"
    branches, jobs = here.get(BRANCHES), here.get(JOBS)
    if branches is not None and branches.kind == DIR:
        kind = "multibranch"
    elif jobs is not None and jobs.kind == DIR:
        kind = "folder"
    numbers: list[tuple[int, int]] = []
    holder = here.get(BUILDS)
    if holder is not None and holder.kind == DIR:
        for e in repo.read_tree(holder.subtree):
            if e.kind == DIR and e.name.isdigit() and len(e.name) < 19:
                numbers.append((int(e.name), e.mtime_ns))
    numbers.sort()
    config = here.get(CONFIG)
    return Item(
        full_name=name_of(parts),
        kind=kind,
        parts=parts,
        builds=tuple(n for n, _ in numbers),
        last_build_ns=numbers[-1][1] if numbers else None,
        config=config.content if config is not None and config.kind == FILE else (),
    )


def catalogue(repo: Repository, root: bytes) -> Iterator[Item]:
    """Every item of a backup, parents before their children, in name order.

    Reads the trees of the containers, of each item and of its ``builds/``: never a build's
    own tree, never a file.
    """
    top = _by_name(repo, root).get(JOBS)
    if top is None or top.kind != DIR:
        return
    stack: list[tuple[Parts, bytes]] = [((JOBS,), top.subtree)]
    seen = 0
    while stack:
        container, tree = stack.pop()
        if len(container) > MAX_DEPTH:
            raise CorruptObject(f"directories nest deeper than {MAX_DEPTH} levels")
        children = sorted((e for e in repo.read_tree(tree) if e.kind == DIR), key=_key)
        later: list[tuple[Parts, bytes]] = []
        for child in children:
            parts = (*container, child.name)
            here = _by_name(repo, child.subtree)
            seen += len(here)
            if seen > MAX_ENTRIES:
                raise CorruptObject(f"the backup lists more than {MAX_ENTRIES} entries")
            item = _item(repo, parts, here)
            if item is None:
                continue
            yield item
            for name in CONTAINERS:
                sub = here.get(name)
                if sub is not None and sub.kind == DIR:
                    later.append(((*parts, name), sub.subtree))
        stack.extend(reversed(later))


def _key(e: Entry) -> bytes:
    return e.name


def ranges(numbers: Iterable[int]) -> str:
    """Build numbers as ranges: ``1-5,7,9-12``."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(numbers):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(_run(run))
        run = [n]
    if run:
        out.append(_run(run))
    return ",".join(out)


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """``120-140,150`` -> [(120, 140), (150, 150)]; raises ValueError when malformed."""
    out: list[tuple[int, int]] = []
    for piece in text.split(","):
        lo, sep, hi = piece.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(piece)
        first, last = int(lo), int(hi) if sep else int(lo)
        if first > last:
            raise ValueError(piece)
        out.append((first, last))
    return out


def items_below(
    repo: Repository, parts: Parts, tree: bytes, within: Callable[[Parts], bool] | None = None
) -> Iterator[Parts]:
    """The directory ``parts`` (tree ``tree``) and every item inside it (a folder's ``jobs/``,
    a multibranch project's ``branches/``): reads the trees of items and containers, never a
    build's. ``within``: items for which it is false are not entered."""
    stack: list[tuple[Parts, bytes]] = [(parts, tree)]
    seen = 0
    while stack:
        here_parts, tree = stack.pop()
        if len(here_parts) > MAX_DEPTH:
            raise CorruptObject(f"directories nest deeper than {MAX_DEPTH} levels")
        here = _by_name(repo, tree)
        seen += len(here)
        if seen > MAX_ENTRIES:
            raise CorruptObject(f"the backup lists more than {MAX_ENTRIES} entries")
        yield here_parts
        for name in CONTAINERS:
            holder = here.get(name)
            if holder is None or holder.kind != DIR:
                continue
            for child in sorted(repo.read_tree(holder.subtree), key=_key, reverse=True):
                sub = (*here_parts, name, child.name)
                if child.kind == DIR and (within is None or within(sub)):
                    stack.append((sub, child.subtree))


def builds_in(repo: Repository, entry: Entry, wanted: list[tuple[int, int]]) -> list[bytes]:
    """Names of the build directories of the item ``entry`` whose numbers lie in ``wanted``
    (ranges as ``parse_ranges`` gives them), in number order."""
    holder = _by_name(repo, entry.subtree).get(BUILDS)
    if holder is None or holder.kind != DIR:
        return []
    found: list[tuple[int, bytes]] = []
    for e in repo.read_tree(holder.subtree):
        if e.kind == DIR and e.name.isdigit() and len(e.name) < 19:
            n = int(e.name)
            if any(lo <= n <= hi for lo, hi in wanted):
                found.append((n, e.name))
    return [name for _, name in sorted(found)]
