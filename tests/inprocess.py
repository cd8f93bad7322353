"""The console script's ``main`` run in this process, with a given environment."""

from __future__ import annotations

import os
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO

from jenkins_backup.cli.main import main


def run_main(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``jenkins-backup ARGS`` with ``env`` added to os.environ."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out, err = StringIO(), StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue(), err.getvalue()
