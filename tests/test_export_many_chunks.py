"""Export of a file stored as many chunks: tarfile reads fixed-size blocks across chunk ends."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from jenkins_backup.operations.backup import backup
from jenkins_backup.operations.export_archive import export_archive
from jenkins_backup.settings import load


def test_a_file_of_many_chunks_exports_whole(
    tmp_path: Path, env: dict[str, str], home: Path
) -> None:
    data = random.Random(3).randbytes(12 << 20)  # incompressible: cut into several chunks
    (home / "jobs" / "big.bin").write_bytes(data)
    settings = load(environ=env)
    backup(settings, 1)
    export_archive(settings, 1, str(tmp_path / "1.tar.zst"))
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(
        ["tar", "--zstd", "-xf", str(tmp_path / "1.tar.zst"), "-C", str(out)], check=True
    )
    assert (out / "jobs" / "big.bin").read_bytes() == data
