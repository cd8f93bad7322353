"""The tools under comparison, each as backup N / restore N / stored bytes.

Every tool reads the same tree and, unless its row says otherwise, the same paths: ``jobs/``
without workspaces at any depth (scope ``jobs``, what the documented S3 example backs up).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from measure import Measurement, run, tree_bytes

WORKSPACES = "jobs/*/workspace*"  # GNU tar: unanchored, '*' matches '/': every depth


@dataclass
class Tool:
    """Base adapter; subclasses fill in the commands."""

    name: str
    home: Path
    work: Path
    scope: str = "jobs"
    env: dict[str, str] = field(default_factory=dict)
    missing: str = ""  # why the tool cannot run here; empty when it can
    timeout: float = 3_600.0

    @property
    def log(self) -> Path:
        return self.work / f"{self.slug}.log"

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name).strip("-")

    def setup(self) -> None:
        """Untimed preparation (init a repository)."""

    def backup(self, number: int) -> Measurement:
        raise NotImplementedError

    def restore(self, number: int, target: Path) -> Measurement:
        raise NotImplementedError

    def stored(self) -> int:
        raise NotImplementedError

    def version(self) -> str:
        return ""

    def _run(
        self, argv: list[str], cwd: Path | None = None, extra: Mapping[str, str] | None = None
    ) -> Measurement:
        env = {**os.environ, **self.env, **(extra or {})}
        with open(self.log, "a") as f:
            f.write(f"$ {' '.join(argv)}\n")
        return run(argv, env=env, cwd=cwd, timeout=self.timeout, log=self.log)


def _missing(program: str) -> str:
    return "" if shutil.which(program) else f"{program} not installed"


def _output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class JenkinsBackup(Tool):
    """Our CLI, driven exactly as the operator does: ``jenkins-backup backup N``."""

    def __init__(
        self,
        name: str,
        home: Path,
        work: Path,
        repository: str,
        *,
        scope: str = "jobs",
        env: Mapping[str, str] | None = None,
        stored_fn: object = None,
    ) -> None:
        super().__init__(name, home, work, scope, dict(env or {}), _missing("jenkins-backup"))
        self.repository = repository
        self._stored_fn = stored_fn
        self.env.update(BACKUP_REPOSITORY=repository, BACKUP_SCOPE=scope)

    def backup(self, number: int) -> Measurement:
        return self._run(
            ["jenkins-backup", "backup", str(number)], extra={"JENKINS_HOME": str(self.home)}
        )

    def restore(self, number: int, target: Path) -> Measurement:
        return self._run(
            ["jenkins-backup", "restore", str(number)], extra={"JENKINS_HOME": str(target)}
        )

    def stored(self) -> int:
        if callable(self._stored_fn):
            return int(self._stored_fn())
        return tree_bytes(Path(self.repository))

    def version(self) -> str:
        return _output(["jenkins-backup", "--version"]) or "dev"


class TarGz(Tool):
    """The documented S3 example (without its ``aws s3 cp``): one full .tar.gz per backup."""

    def __init__(self, home: Path, work: Path) -> None:
        super().__init__("tar -czf", home, work, "jobs", missing=_missing("tar"))
        self.out = work / "tar-gz"

    def setup(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)

    def backup(self, number: int) -> Measurement:
        return self._run(
            [
                "tar",
                "-C",
                str(self.home),
                "-czf",
                str(self.out / f"{number}.tar.gz"),
                "--exclude",
                WORKSPACES,
                "jobs",
            ]
        )

    def restore(self, number: int, target: Path) -> Measurement:
        target.mkdir(parents=True, exist_ok=True)
        return self._run(["tar", "-C", str(target), "-xzf", str(self.out / f"{number}.tar.gz")])

    def stored(self) -> int:
        return tree_bytes(self.out)

    def version(self) -> str:
        return _output(["tar", "--version"]).splitlines()[0] if self.missing == "" else ""


class TarZstd(Tool):
    """The operator's PVC image: ``tar --zstd`` of jobs/ without workspaces and job config.xml.

    Its second exclude is anchored and does not let ``*`` cross ``/``: only top-level
    ``jobs/<job>/config.xml`` is left out, i.e. scope ``history``.
    """

    def __init__(self, home: Path, work: Path) -> None:
        missing = _missing("tar") or _missing("zstd")
        super().__init__("tar --zstd", home, work, "history", missing=missing)
        self.out = work / "tar-zstd"

    def setup(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)

    def backup(self, number: int) -> Measurement:
        return self._run(
            [
                "tar",
                "-C",
                str(self.home),
                "--zstd",
                "-cf",
                str(self.out / f"{number}.tar.zst"),
                "--exclude",
                WORKSPACES,
                "--no-wildcards-match-slash",
                "--anchored",
                "--exclude",
                "jobs/*/config.xml",
                "jobs",
            ]
        )

    def restore(self, number: int, target: Path) -> Measurement:
        target.mkdir(parents=True, exist_ok=True)
        return self._run(
            ["tar", "-C", str(target), "--zstd", "-xf", str(self.out / f"{number}.tar.zst")]
        )

    def stored(self) -> int:
        return tree_bytes(self.out)

    def version(self) -> str:
        return _output(["zstd", "--version"]) if self.missing == "" else ""


class Restic(Tool):
    """restic (Debian package), compression ``auto``, run from JENKINS_HOME on ``jobs``."""

    def __init__(
        self,
        name: str,
        home: Path,
        work: Path,
        repository: str,
        *,
        env: Mapping[str, str] | None = None,
        stored_fn: object = None,
    ) -> None:
        super().__init__(name, home, work, "jobs", dict(env or {}), _missing("restic"))
        self.repository = repository
        self._stored_fn = stored_fn
        self.env.update(
            RESTIC_REPOSITORY=repository,
            RESTIC_PASSWORD="benchmark-password",
            RESTIC_CACHE_DIR=str(work / f"{self.slug}-cache"),
        )

    def setup(self) -> None:
        m = self._run(["restic", "init", "--repository-version", "2"])
        if not m.ok:
            raise RuntimeError(f"restic init failed: {m.error}")

    def backup(self, number: int) -> Measurement:
        return self._run(
            [
                "restic",
                "backup",
                "--compression",
                "auto",
                "--host",
                "bench",
                "--tag",
                str(number),
                "--exclude",
                "workspace",
                "--exclude",
                "workspace@*",
                "jobs",
            ],
            cwd=self.home,
        )

    def restore(self, number: int, target: Path) -> Measurement:
        return self._run(
            [
                "restic",
                "restore",
                "latest",
                "--host",
                "bench",
                "--tag",
                str(number),
                "--target",
                str(target),
            ]
        )

    def stored(self) -> int:
        if callable(self._stored_fn):
            return int(self._stored_fn())
        return tree_bytes(Path(self.repository))

    def version(self) -> str:
        return _output(["restic", "version"]).split(" compiled")[0] if not self.missing else ""
