"""docs/FORMAT.md is complete: its recovery script restores a backup without our code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from helpers import describe
from inprocess import run_cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md"


def test_recovery_script_from_the_format_doc(tmp_path: Path, env: dict[str, str]) -> None:
    script = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert script is not None
    (tmp_path / "recover.py").write_text(script.group(1))
    assert "jenkins_backup" not in script.group(1)
    run_cli("backup", "4", env=env, check=True)
    restored = tmp_path / "restored"
    run_cli("restore", "4", env={**env, "JENKINS_HOME": str(restored)}, check=True)
    recovered = tmp_path / "recovered"
    subprocess.run(
        [
            sys.executable,
            str(tmp_path / "recover.py"),
            env["BACKUP_REPOSITORY"],
            "4",
            str(recovered),
        ],
        check=True,
        timeout=120,
        cwd=tmp_path,
    )

    def content(root: Path) -> dict[bytes, tuple[str, str]]:
        return {k: (v[0], v[3]) for k, v in describe(root).items()}

    assert content(recovered) == content(restored)
    assert len(content(restored)) > 100
