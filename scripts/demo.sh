#!/usr/bin/env bash
# Set up, then run the main job: back up a generated JENKINS_HOME to a local repository,
# back it up again after Jenkins "ran", and restore the latest backup into an empty home.
# Usage: bash scripts/demo.sh [tiny|small|medium]   (default: small, about 20,000 files)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-small}
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet -e .
export PATH="$PWD/.venv/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export JENKINS_HOME="$work/jenkins_home" BACKUP_REPOSITORY="$work/repository"

echo "== generating a $SIZE JENKINS_HOME in $JENKINS_HOME"
python tools/homegen.py "$JENKINS_HOME" --size "$SIZE" --seed 1 >/dev/null
echo "== jenkins-backup latest (no backup yet): $(jenkins-backup latest)"
time jenkins-backup backup 1
echo "== Jenkins runs: new builds in 5% of the jobs"
python tools/homegen.py "$JENKINS_HOME" --add-builds 0.05 --seed 2 >/dev/null
time jenkins-backup backup 2
time jenkins-backup backup 3
jenkins-backup list
echo "== restoring the latest backup ($(jenkins-backup latest)) into an empty home"
time jenkins-backup restore latest --jenkins-home "$work/restored"
echo "== comparing (jobs/ without workspaces)"
python - "$JENKINS_HOME" "$work/restored" <<'PY'
import sys
sys.path.insert(0, "tests")
from pathlib import Path
from helpers import describe, in_jobs_scope
src = {k: v for k, v in describe(Path(sys.argv[1]), in_jobs_scope).items() if v[0] != "dir"}
dst = {k: v for k, v in describe(Path(sys.argv[2])).items() if v[0] != "dir"}
if src != dst:
    sys.exit(f"MISMATCH: {len(set(src) ^ set(dst))} paths differ")
print(f"identical: {len(src)} files and links (content, mode, mtime, link targets)")
PY
echo "== repository size: $(du -sh "$BACKUP_REPOSITORY" | cut -f1)"
