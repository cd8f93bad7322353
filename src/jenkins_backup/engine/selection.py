"""Which part of a backup a partial restore writes: directories (jobs, builds) and patterns.

A path is selected when it lies in one of the roots (all paths when there are none), matches an
include pattern (any path when there are none) and matches no exclude pattern; the patterns are
the backup's own syntax (engine/scope.py), so a pattern naming a directory covers what is below
it. ``descend`` says which directories may hold a selected path: the walk reads only those trees,
so a restore of one job reads the trees on the way to it and its own subtree, not the backup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jenkins_backup.engine.scope import compile_glob
from jenkins_backup.repository.walk import Parts

_WILD = "*?["


def _lead(pattern: str) -> Parts:
    """The literal leading directories of a pattern: nothing matches outside them."""
    pat = pattern.strip().strip("/")
    if "/" not in pat:
        return ()  # a bare name matches at any depth
    lead: list[bytes] = []
    for seg in pat.split("/"):
        if any(c in seg for c in _WILD):
            break
        lead.append(seg.encode("utf-8", "surrogateescape"))
    return tuple(lead)


def _within(parts: Parts, base: Parts) -> bool:
    return parts[: len(base)] == base


@dataclass(frozen=True)
class Selection:
    """Roots (directories or files, relative to the home) refined by include/exclude patterns."""

    roots: tuple[Parts, ...] = ()
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    _in: tuple[re.Pattern[bytes], ...] = field(init=False, repr=False, compare=False)
    _ex: tuple[re.Pattern[bytes], ...] = field(init=False, repr=False, compare=False)
    _leads: tuple[Parts, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_in", tuple(compile_glob(p) for p in self.includes))
        object.__setattr__(self, "_ex", tuple(compile_glob(p) for p in self.excludes))
        object.__setattr__(self, "_leads", tuple(_lead(p) for p in self.includes))

    @property
    def everything(self) -> bool:
        """True when nothing is selected out: a full restore."""
        return not (self.roots or self.includes or self.excludes)

    def _excluded(self, rel: bytes) -> bool:
        return any(p.match(rel) for p in self._ex)

    def wants(self, parts: Parts) -> bool:
        """Whether the path ``parts`` (file, link or directory) is restored."""
        if self.roots and not any(_within(parts, r) for r in self.roots):
            return False
        rel = b"/".join(parts)
        if self._excluded(rel):
            return False
        return not self._in or any(p.match(rel) for p in self._in)

    def descend(self, parts: Parts) -> bool:
        """Whether directory ``parts`` may hold a selected path (its tree must be read)."""
        if self.roots and not any(_within(parts, r) or _within(r, parts) for r in self.roots):
            return False
        rel = b"/".join(parts)
        if self._excluded(rel):
            return False
        if not self._in or any(p.match(rel) for p in self._in):
            return True
        return any(_within(parts, lead) or _within(lead, parts) for lead in self._leads)

    def bases(self) -> tuple[Parts, ...]:
        """Directories that hold every selected path, none inside another; ``((),)``: the
        whole backup. Checking these before the restore checks all that it reads."""
        if self.roots:
            found = self.roots
        elif self._leads and all(self._leads):
            found = self._leads
        else:
            return ((),)
        out: list[Parts] = []
        for base in sorted(set(found), key=len):
            if not any(_within(base, kept) for kept in out):
                out.append(base)
        return tuple(out)
