"""Import of the old providers' tarballs and export to a plain .tar.zst, checked with GNU tar.

Archives are made by the real commands of the documented S3 example (`tar -czf`) and of the
operator's PVC image (`tar --zstd`), and exports are extracted by the real `tar --zstd -xf`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from helpers import describe
from inprocess import run_cli
from jenkins_backup.storage.factory import open_storage
from servers import Server

pytestmark = pytest.mark.skipif(
    shutil.which("tar") is None
    or b"--zstd" not in subprocess.run(["tar", "--help"], capture_output=True).stdout
    or shutil.which("zstd") is None,
    reason="GNU tar with --zstd and the zstd binary are needed",
)

S3_EXAMPLE = ["tar", "-czf", "{out}", "--exclude", "jobs/*/workspace*", "jobs"]
PVC_IMAGE = [
    "tar", "--zstd", "-cf", "{out}", "--exclude", "jobs/*/workspace*",
    "--exclude", "jobs/*/config.xml", "jobs",
]  # fmt: skip


def make_archive(home: Path, command: list[str], out: Path, mtime: int | None = None) -> Path:
    argv = [a.replace("{out}", str(out)) for a in command]
    subprocess.run(argv, cwd=home, check=True, capture_output=True)
    if mtime is not None:
        os.utime(out, (mtime, mtime))
    return out


def tar_extract(archive: Path, dest: Path) -> Path:
    """GNU tar's own extraction, as root would run it in the old providers' restore."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xpf", str(archive), "-C", str(dest)], check=True)
    return dest


def restore_to(env: dict[str, str], number: int, dest: Path) -> Path:
    run_cli("restore", str(number), env={**env, "JENKINS_HOME": str(dest)}, check=True)
    return dest


def not_special(root: Path) -> set[bytes]:
    """Paths of FIFOs, sockets and devices, which neither backup nor import keeps."""
    out = set()
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not (os.path.islink(p) or os.path.isdir(p) or os.path.isfile(p)):
                out.add(os.path.relpath(p, base))
    return out


@pytest.mark.parametrize(
    ("command", "name"), [(S3_EXAMPLE, "1.tar.gz"), (PVC_IMAGE, "1.tar.zstd")], ids=["s3", "pvc"]
)
def test_import_restores_what_tar_extracts(
    home: Path, env: dict[str, str], tmp_path: Path, command: list[str], name: str
) -> None:
    archive = make_archive(home, command, tmp_path / name)
    run_cli("import", "1", str(archive), env=env, check=True)
    restored = restore_to(env, 1, tmp_path / "restored")
    expected = tar_extract(archive, tmp_path / "by-tar")
    want = describe(expected)
    assert want, "tar extracted nothing"
    assert not_special(restored) == set()
    special = not_special(expected)
    assert describe(restored) == {k: v for k, v in want.items() if k not in special}


def test_bulk_import_follows_archive_time_and_is_idempotent(
    home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    src = tmp_path / "old-backups"
    src.mkdir()
    # Numbers out of time order, as after an operator restore reset the sequence.
    times = {5: 1_700_000_300, 3: 1_700_000_100, 9: 1_700_000_200}
    for number, mtime in times.items():
        (home / "jobs" / f"marker-{number}").write_text(str(number))
        suffix = ".tar.gz" if number != 9 else ".tar.zstd"
        command = S3_EXAMPLE if suffix == ".tar.gz" else PVC_IMAGE
        make_archive(home, command, src / f"{number}{suffix}", mtime)
    (src / "notes.txt").write_text("not an archive")
    run_cli("import", "--all", str(src), env=env, check=True)
    assert run_cli("latest", env=env, check=True).stdout == "5\n"
    rows = json.loads(run_cli("list", "--json", env=env, check=True).stdout)
    assert [r["number"] for r in rows] == [3, 9, 5]
    assert [r["committed_at"][:19] for r in rows] == [
        "2023-11-14T22:15:00",
        "2023-11-14T22:16:40",
        "2023-11-14T22:18:20",
    ]
    snapshots = sorted(os.listdir(Path(env["BACKUP_REPOSITORY"]) / "snapshots"))
    again = run_cli("import", "--all", str(src), env=env, check=True)
    assert "0 imported, 3 skipped, 0 failed" in again.stderr
    assert sorted(os.listdir(Path(env["BACKUP_REPOSITORY"]) / "snapshots")) == snapshots
    # Each backup holds its own archive's content.
    restored = restore_to(env, 3, tmp_path / "r3")
    assert (restored / "jobs" / "marker-3").read_text() == "3"
    assert (restored / "jobs" / "marker-5").exists()
    assert not (restored / "jobs" / "marker-9").exists()
    # A backup made after the switch continues the sequence.
    run_cli("backup", "10", env=env, check=True)
    assert run_cli("latest", env=env, check=True).stdout == "10\n"


def test_newer_archive_replaces_backup_and_damaged_archives_fail(
    home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    first = make_archive(home, S3_EXAMPLE, tmp_path / "a" / "4.tar.gz", 1_700_000_000)
    run_cli("import", "4", str(first), env=env, check=True)
    (home / "jobs" / "new-marker").write_text("x")
    newer = make_archive(home, S3_EXAMPLE, tmp_path / "4.tar.gz", 1_700_000_500)
    run_cli("import", "4", str(newer), env=env, check=True)
    restored = restore_to(env, 4, tmp_path / "r4")
    assert (restored / "jobs" / "new-marker").exists()
    # An older archive with other content does not shadow the repository's backup 4.
    proc = run_cli("import", "4", str(first), env=env)
    assert proc.returncode == 1 and "newer" in proc.stderr.splitlines()[-1]
    # Partial and zero-size archives (known failures of the PVC image) are never imported.
    data = newer.read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "7.tar.gz").write_bytes(data[: len(data) // 2])
    zst = make_archive(home, PVC_IMAGE, tmp_path / "8.tar.zstd")
    (cut / "8.tar.zstd").write_bytes(zst.read_bytes()[:-40])
    (cut / "6.tar.zstd").write_bytes(b"")
    proc = run_cli("import", "--all", str(cut), env=env)
    assert proc.returncode == 1
    assert "0 imported, 0 skipped, 3 failed" in proc.stderr.splitlines()[-1]
    assert run_cli("latest", env=env, check=True).stdout == "4\n"


# -- hostile archives -----------------------------------------------------------------------


def _hostile(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tf:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _m(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_700_000_000
    return info


@pytest.mark.parametrize(
    "case", ["dotdot", "through-symlink", "hardlink-out", "symlink-dir-then-file"]
)
def test_hostile_archives_are_refused(env: dict[str, str], tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    ok = (_m("jobs/a/ok.txt"), b"fine")
    members = {
        "dotdot": [ok, (_m("jobs/../../outside/x"), b"pwned")],
        "through-symlink": [
            ok,
            (_m("jobs/a/escape", tarfile.SYMTYPE, str(outside)), b""),
            (_m("jobs/a/escape/pwned"), b"pwned"),
        ],
        "hardlink-out": [ok, (_m("jobs/a/h", tarfile.LNKTYPE, "../outside/target"), b"")],
        "symlink-dir-then-file": [
            (_m("jobs/a/up", tarfile.SYMTYPE, "../../../outside"), b""),
            (_m("jobs/a/up"), b"replaces the link, not its target"),
            (_m("jobs/a/up2", tarfile.SYMTYPE, "../../../outside"), b""),
            (_m("jobs/a/up2/x"), b"pwned"),
        ],
    }[case]
    work = tmp_path / "work"
    work.mkdir()
    archive = _hostile(tmp_path / "1.tar.gz", members)
    proc = run_cli("import", "1", str(archive), "--work-dir", str(work), env=env)
    assert proc.returncode == 1, proc.stderr
    assert os.listdir(outside) == []
    assert os.listdir(work) == []
    assert run_cli("latest", env=env, check=True).stdout == "-1\n"


def test_hostile_names_and_types_are_neutralized(env: dict[str, str], tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dev = _m("jobs/a/null", tarfile.CHRTYPE)
    dev.devmajor, dev.devminor = 1, 3
    setuid = _m("jobs/a/suid")
    setuid.mode = 0o6755
    archive = _hostile(
        tmp_path / "2.tar.gz",
        [
            (_m(str(outside / "abs.txt")), b"absolute name"),
            (dev, b""),
            (_m("jobs/a/fifo", tarfile.FIFOTYPE), b""),
            (setuid, b"#!/bin/sh\n"),
            (_m("jobs/a/out-link", tarfile.SYMTYPE, "/etc/passwd"), b""),
            (_m("jobs/a/same"), b"first"),
            (_m("jobs/a/same"), b"second wins, as with tar"),
        ],
    )
    run_cli("import", "2", str(archive), env=env, check=True)
    assert os.listdir(outside) == []
    restored = restore_to(env, 2, tmp_path / "r")
    # The absolute name lands inside, with its leading '/' stripped, as GNU tar does.
    assert (restored / str(outside).lstrip("/") / "abs.txt").read_bytes() == b"absolute name"
    assert sorted(os.listdir(restored / "jobs" / "a")) == ["out-link", "same", "suid"]
    assert os.readlink(restored / "jobs" / "a" / "out-link") == "/etc/passwd"
    assert (restored / "jobs" / "a" / "suid").stat().st_mode & 0o7777 == 0o755
    assert (restored / "jobs" / "a" / "same").read_bytes() == b"second wins, as with tar"


# -- export ---------------------------------------------------------------------------------


def _odd_names(home: Path) -> list[bytes]:
    d = os.fsencode(home / "jobs" / "odd")
    os.makedirs(d, exist_ok=True)
    names = [b"\xff\xfe-not-utf8", b"a\nnewline", b"x" * 255, "ünï-名前".encode()]
    for n in names:
        with open(os.path.join(d, n), "wb") as f:
            f.write(n)
        os.utime(os.path.join(d, n), ns=(1_600_000_000_123_456_789,) * 2)
    deep = os.path.join(d, *([b"d" * 200] * 3))
    os.makedirs(deep)
    with open(os.path.join(deep, b"f"), "wb") as f:
        f.write(b"deep")
    os.symlink(b"\xff\xfe-not-utf8", os.path.join(d, b"link-\xe9"))
    return names


def test_export_extracts_with_gnu_tar_like_restore(
    home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    names = _odd_names(home)
    run_cli("backup", "1", env=env, check=True)
    restored = restore_to(env, 1, tmp_path / "restored")
    out = tmp_path / "export" / "1.tar.zst"
    out.parent.mkdir()
    run_cli("export", "1", str(out), env=env, check=True)
    assert os.listdir(out.parent) == ["1.tar.zst"]
    by_tar = tmp_path / "by-tar"
    by_tar.mkdir()
    subprocess.run(["tar", "--zstd", "-xpf", str(out), "-C", str(by_tar)], check=True)
    want = describe(restored)
    assert any(os.fsencode("odd") in k for k in want)
    assert describe(by_tar) == want
    odd = os.fsencode(by_tar / "jobs" / "odd")
    assert set(names) <= set(os.listdir(odd))
    assert os.stat(os.path.join(odd, names[0])).st_mtime_ns == 1_600_000_000_123_456_789

    # The same bytes on stdout, with logs on stderr only.
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         f"'{sys.executable}' -m jenkins_backup export 1 - | tar --zstd -tf - | wc -l"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    listed = subprocess.run(["tar", "--zstd", "-tf", str(out)], capture_output=True, check=True)
    assert int(piped.stdout) == listed.stdout.count(b"\n")
    assert "exported backup 1" in piped.stderr
    assert "tar:" not in piped.stderr + listed.stderr.decode()  # no warning from GNU tar


def test_export_of_import_round_trips_an_s3_archive(
    home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    archive = make_archive(home, S3_EXAMPLE, tmp_path / "3.tar.gz")
    run_cli("import", "3", str(archive), env=env, check=True)
    out = tmp_path / "3.tar.zst"
    run_cli("export", "3", str(out), env=env, check=True)
    again = tmp_path / "again"
    again.mkdir()
    run_cli("import", "4", str(out), env=env, check=True)
    assert describe(restore_to(env, 4, again)) == describe(restore_to(env, 3, tmp_path / "r3"))
    missing = run_cli("export", "99", str(tmp_path / "x.tar.zst"), env=env)
    assert missing.returncode == 1 and not (tmp_path / "x.tar.zst").exists()


# -- S3 -------------------------------------------------------------------------------------


def test_import_all_from_s3_prefix(
    s3_server: Server, home: Path, env: dict[str, str], tmp_path: Path
) -> None:
    server = s3_server

    url = server.repo_url("old-backups")
    store = open_storage(url, server.env)
    for number in (7, 3):  # uploaded in this order: S3's LastModified is the archive time
        if number == 3:  # LastModified has one-second resolution: the server's clock moves on
            time.sleep(1.05 - time.time() % 1)
        (home / "jobs" / "marker").write_text(str(number))
        archive = make_archive(home, S3_EXAMPLE, tmp_path / f"{number}.tar.gz")
        store.put(f"{number}.tar.gz", archive.read_bytes())
        store.put(f"nested/{number}.tar.gz", b"ignored: not directly under the prefix")
    s3env = {**env, **server.env}
    run_cli("import", "--all", url, env=s3env, check=True)
    assert run_cli("latest", env=s3env, check=True).stdout == "3\n"
    restored = restore_to(s3env, 7, tmp_path / "r7")
    assert (restored / "jobs" / "marker").read_text() == "7"
