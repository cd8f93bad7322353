#!/usr/bin/env bash
# /home/user/bin/get-latest.sh
#
# Drop-in for the Jenkins Operator's backup-pvc image (spec.restore.getLatestAction): prints the
# number of the newest intact backup, or -1 when there is none, and nothing else on stdout.
# The work is done by `jenkins-backup latest` (environment: BACKUP_DIR or BACKUP_REPOSITORY).
set -euo pipefail

if [[ $# -ne 0 ]]; then
  echo "Usage: $0" >&2
  exit 1
fi

exec jenkins-backup latest
