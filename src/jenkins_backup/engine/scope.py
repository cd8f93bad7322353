"""What gets backed up: scope profiles refined by include and exclude patterns.

Paths are relative to JENKINS_HOME, as bytes, '/'-separated. Patterns are globs: ``*`` matches
within one path segment, ``**`` any number of segments; a pattern without '/' matches a name at
any depth (as in .gitignore).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jenkins_backup.errors import UsageError

PROFILES = ("jobs", "history", "full")

# Restore writes each file under this name (its pid, a counter) and renames it into place; a
# killed restore leaves such names behind. They are never backed up, and only the next restore
# removes them.
RESTORE_TMP_PREFIX = b".jbtmp-"
_RESTORE_TMP = re.compile(re.escape(RESTORE_TMP_PREFIX) + rb"([0-9]{1,7})-[0-9]{1,20}")


def restore_temporary(name: bytes) -> int | None:
    """The pid of the restore that named ``name``, when it is exactly a restore's temp name."""
    if not name.startswith(RESTORE_TMP_PREFIX):
        return None
    match = _RESTORE_TMP.fullmatch(name)
    return int(match.group(1)) if match else None


# Directories of the controller that hold nothing worth restoring (full profile).
_FULL_SKIP_TOP = {b"workspace", b"caches", b"war", b"logs", b"tmp", b".cache", b".java"}
_JOB_CONTAINERS = {b"jobs", b"branches"}


def _glob_to_regex(pattern: str) -> re.Pattern[bytes]:
    pat = pattern.strip().strip("/")
    if not pat:
        raise UsageError("empty include/exclude pattern")
    if "/" not in pat:
        pat = "**/" + pat
    out = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    # A pattern naming a directory covers everything below it.
    return re.compile(("^" + "".join(out) + "(?:/.*)?$").encode("utf-8", "surrogateescape"), re.S)


@dataclass(frozen=True)
class Scope:
    profile: str = "jobs"
    excludes: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    _ex: list[re.Pattern[bytes]] = field(init=False, repr=False, compare=False)
    _in: list[re.Pattern[bytes]] = field(init=False, repr=False, compare=False)
    _in_prefixes: list[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise UsageError(
                f"unknown BACKUP_SCOPE {self.profile!r}: use one of {', '.join(PROFILES)}"
            )
        object.__setattr__(self, "_ex", [_glob_to_regex(p) for p in self.excludes])
        object.__setattr__(self, "_in", [_glob_to_regex(p) for p in self.includes])
        # Directories an include pattern may reach: its literal leading segments.
        prefixes: list[bytes] = []
        for p in self.includes:
            lead = []
            for seg in p.strip().strip("/").split("/"):
                if any(c in seg for c in "*?["):
                    break
                lead.append(seg)
            prefixes.append("/".join(lead).encode("utf-8", "surrogateescape"))
        object.__setattr__(self, "_in_prefixes", prefixes)

    def _excluded(self, rel: bytes) -> bool:
        return any(r.match(rel) for r in self._ex)

    def _included(self, rel: bytes) -> bool:
        return any(r.match(rel) for r in self._in)

    def _profile_wants(self, rel: bytes, is_dir: bool) -> bool:
        parts = rel.split(b"/")
        if self.profile != "full" and parts[0] != b"jobs":
            return False
        if self.profile == "full":
            if parts[0] in _FULL_SKIP_TOP:
                return False
            if parts[0] == b"plugins" and len(parts) >= 2 and is_dir and len(parts) == 2:
                return False  # exploded plugin folders; the .jpi/.hpi archives are kept
            if parts[0] != b"jobs" and parts[-1].endswith(b".tmp") and not is_dir:
                return False  # the controller's temporary files; job data is kept whole
        if _is_workspace(parts):
            return False
        # PVC-image compatibility: configuration comes from Configuration-as-Code and seed jobs.
        return not (
            self.profile == "history"
            and len(parts) == 3
            and parts[0] == b"jobs"
            and parts[2] == b"config.xml"
        )

    def needs_check(self, rel_dir: bytes) -> bool:
        """Whether the children of ``rel_dir`` (itself wanted) need per-entry scope checks.

        Below a job's own folders (builds/, archives, ...) every entry is wanted unless the user
        gave patterns: the walk skips the checks there, which is most of a home.
        """
        if self._ex or self._in or not rel_dir:
            return True
        parts = rel_dir.split(b"/")
        if parts[0] != b"jobs":
            return True
        return _job_level(parts) is not None

    def wants(self, rel: bytes, is_dir: bool) -> bool:
        """Whether ``rel`` (file, link or directory) belongs to the backup."""
        if self._excluded(rel):
            return False
        return self._profile_wants(rel, is_dir) or self._included(rel)

    @property
    def roots(self) -> tuple[bytes, ...]:
        """Directories the scope starts from below the home: ``jobs`` and the literal leading
        directories of include patterns. Each is often a link to another volume, so a link
        there is followed (backup) and written through (restore); other links stay links."""
        return (b"jobs", *(p for p in self._in_prefixes if p and p != b"jobs"))

    def descend(self, rel: bytes) -> bool:
        """Whether a directory must be walked: it is wanted, or an include pattern lies below."""
        if self._excluded(rel):
            return False
        if self._profile_wants(rel, True) or self._included(rel):
            return True
        return any(p.startswith(rel + b"/") or p == rel for p in self._in_prefixes)


def _job_level(parts: list[bytes]) -> str | None:
    """'container' for jobs/, jobs/<job>/jobs, jobs/<mb>/branches...; 'job' for a job folder."""
    level = "container"
    for part in parts[1:]:
        if level == "container":
            level = "job"
        elif part in _JOB_CONTAINERS:
            level = "container"
        else:
            return None
    return level


def _is_workspace(parts: list[bytes]) -> bool:
    """True for a job's workspace at any depth: jobs/a/workspace, jobs/f/jobs/b/workspace@tmp,
    jobs/mb/branches/main/workspace@2, and the controller's top-level workspace/."""
    if parts[0] == b"workspace":
        return True
    if parts[0] != b"jobs":
        return False
    # Walk container/name pairs: jobs/<job>[/(jobs|branches)/<job>]...
    i = 1
    while i < len(parts):
        # parts[i] is a job name; parts[i+1] may be a container or a workspace.
        nxt = i + 1
        if nxt >= len(parts):
            return False
        if parts[nxt].startswith(b"workspace"):
            return True
        if parts[nxt] in _JOB_CONTAINERS:
            i = nxt + 1
            continue
        return False
    return False


def compile_glob(pattern: str) -> re.Pattern[bytes]:
    """One pattern of the backup's syntax, compiled: restore and find select paths with it."""
    return _glob_to_regex(pattern)
