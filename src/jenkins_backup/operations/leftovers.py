"""Temporary names of import and export that say who made them, and the sweep of dead ones.

An import extracts a plaintext home (credentials included) into a work directory, and an
export writes beside its target under a temporary name. Both are removed on failure; a killed
run cannot remove anything, so the next run removes what dead runs of this host left:
``<prefix><host>-<pid>-<8 random characters>`` whose pid is not alive, owned by this user, of
the expected kind (a directory for import, a regular file for export). Nothing else is touched.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import stat
import tempfile

from jenkins_backup.processes import pid_alive

log = logging.getLogger(__name__)

IMPORT_PREFIX = "jenkins-backup-import-"
EXPORT_PREFIX = ".jenkins-backup-export-"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def prefix(kind: str) -> str:
    """The ``prefix`` to give tempfile.mkdtemp/mkstemp: it names this host and process."""
    return f"{kind}{_host()}-{os.getpid()}-"


def sweep(folder: str | None, kind: str, *, directory: bool) -> int:
    """Remove leftovers of dead runs of this host named ``kind`` in ``folder``; return count."""
    where = folder or tempfile.gettempdir()  # where mkdtemp/mkstemp put them
    name_re = re.compile(re.escape(kind + _host()) + r"-([0-9]{1,7})-[a-z0-9_]{8}")
    try:
        names = os.listdir(where)
    except OSError:
        return 0
    removed = 0
    for name in names:
        match = name_re.fullmatch(name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        path = os.path.join(where, name)
        try:
            st = os.lstat(path)
            if st.st_uid != os.getuid():
                continue
            if directory and stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)  # never follows a link inside
            elif not directory and stat.S_ISREG(st.st_mode):
                os.unlink(path)
            else:
                continue
        except OSError as exc:
            log.warning("could not remove the leftover %s: %s", path, exc.strerror)
            continue
        log.info("removed %s, left by a run that died", path)
        removed += 1
    return removed
