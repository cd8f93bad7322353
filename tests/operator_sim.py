"""A simulator of the Jenkins Operator's backup and restore loop (DESIGN.md section 2).

It holds what the operator holds (the Jenkins resource's status and `spec.restore.recoveryOnce`)
and the pod (running or not; its JENKINS_HOME is an emptyDir, emptied at every start), and
drives the real CLI exactly as the operator's exec does: the command with the number appended
as a decimal argument, no stdin, exit 0 = success; getLatestAction with no argument, its stdout
parsed as the number. A failed command changes nothing, so the same number is tried again.

The state machine, one method per operator event:

- ``start_pod``: a new pod (fresh start, restart, crash restart): the home is empty, then the
  operator's restore phase runs (``restore``).
- ``restore``: skipped when this pod is already restored; otherwise the number is
  getLatestAction's answer (-1: no backup, skip), skipped when ``status.lastBackup`` is 0 (the
  operator's own guard: "Skipping restore backup"), and overridden by ``recoveryOnce``.
  Success: restoredBackup = N, pendingBackup = N + 1, recoveryOnce cleared.
- ``tick``: the backup trigger (pendingBackup = lastBackup + 1 when they are equal), then
  ``backup pendingBackup``; success: lastBackup = pendingBackup = N.
- ``delete_pod``: with makeBackupBeforePodDeletion, one backup while the pod terminates;
  ``crash=True`` is a pod that dies without it.
- ``wipe_status``: the resource's status is lost (all numbers 0).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from helpers import describe, in_jobs_scope
from inprocess import run_cli

Files = dict[bytes, tuple[str, int, int, str]]


def files_in_scope(home: Path, keep: Callable[[str], bool] = in_jobs_scope) -> Files:
    """Files and links a restore must reproduce (directories hold nothing by themselves)."""
    return {k: v for k, v in describe(home, keep).items() if v[0] != "dir"}


@dataclass
class Status:
    """`status` of the Jenkins resource, as far as backups are concerned."""

    last_backup: int = 0
    pending_backup: int = 0
    restored_backup: int = 0
    backup_done_before_pod_deletion: bool = False


@dataclass
class Operator:
    env: dict[str, str]
    home: Path
    get_latest_action: bool = True
    make_backup_before_pod_deletion: bool = True
    status: Status = field(default_factory=Status)
    recovery_once: int = 0
    pod_running: bool = False
    # What each committed number held when it was backed up (files in scope).
    backed_up: dict[int, Files] = field(default_factory=dict)
    # What the home was last restored from (None: the restore was skipped).
    restored: int | None = None
    log: list[str] = field(default_factory=list)

    # -- the exec, as the operator does it ------------------------------------------------

    def exec(self, *command: str) -> bool:
        proc = run_cli(*command, env=self.env, timeout=120)
        self.log.append(f"{' '.join(command)} -> {proc.returncode}")
        return proc.returncode == 0

    def latest(self) -> int:
        proc = run_cli("latest", env=self.env, timeout=60, check=True)
        out = proc.stdout
        assert out.rstrip("\n").lstrip("-").isdigit() and out.count("\n") <= 1, repr(out)
        number = int(out)
        assert number == -1 or number > 0, "getLatestAction must never answer 0"
        self.log.append(f"latest -> {number}")
        return number

    # -- events --------------------------------------------------------------------------

    def start_pod(self) -> None:
        assert not self.pod_running
        if self.home.exists():
            shutil.rmtree(self.home)
        self.home.mkdir()
        self.pod_running = True
        self.status.restored_backup = 0
        self.status.backup_done_before_pod_deletion = False
        self.restore()

    def restore(self) -> bool:
        assert self.pod_running
        if self.status.restored_backup != 0:
            return True
        number = self.latest() if self.get_latest_action else self.status.last_backup
        if self.recovery_once:
            number = self.recovery_once
        elif number == -1 or self.status.last_backup == 0:
            self.log.append("restore skipped")
            self.restored = None
            if self.status.pending_backup == 0:
                self.status.pending_backup = 1
            return True
        if not self.exec("restore", str(number)):
            return False  # the operator tries the same restore again
        self.recovery_once = 0
        self.status.restored_backup = number
        self.status.pending_backup = number + 1
        self.restored = number
        return True

    def tick(self, *, lose_status_update: bool = False) -> int | None:
        """One backup trigger; the number backed up, or None when the backup failed.

        ``lose_status_update``: the backup succeeds but its status update is lost (operator
        issues #396, #962), so the next tick sends the same number again.
        """
        assert self.pod_running
        if self.status.last_backup == self.status.pending_backup:
            self.status.pending_backup += 1
        return self._backup(lose_status_update)

    def delete_pod(self, *, crash: bool = False) -> None:
        assert self.pod_running
        if (
            not crash
            and self.make_backup_before_pod_deletion
            and not self.status.backup_done_before_pod_deletion
        ):
            if self.status.last_backup == self.status.pending_backup:
                self.status.pending_backup += 1
            if self._backup(False) is not None:
                self.status.backup_done_before_pod_deletion = True
        self.pod_running = False

    def wipe_status(self) -> None:
        self.status = Status()

    # -- helpers -------------------------------------------------------------------------

    def _backup(self, lose_status_update: bool) -> int | None:
        number = self.status.pending_backup
        state = files_in_scope(self.home)
        if not self.exec("backup", str(number)):
            return None
        self.backed_up[number] = state
        if not lose_status_update:
            if self.status.restored_backup == 0:
                self.status.restored_backup = number
            self.status.last_backup = number
            self.status.pending_backup = number
        return number
