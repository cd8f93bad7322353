#!/usr/bin/env bash
# /home/user/bin/restore.sh <number>
#
# Drop-in for the Jenkins Operator's backup-pvc image: the operator execs this script in the
# backup sidecar with the number of the backup to restore appended. The work is done by
# `jenkins-backup restore`, which reads the same environment (JENKINS_HOME, BACKUP_DIR; or
# BACKUP_REPOSITORY for object storage).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "Usage: $0 <backup number>" >&2
  exit 1
fi

# Same scope as backup.sh, so a restore covers exactly what the backups hold.
export BACKUP_SCOPE="${BACKUP_SCOPE:-history}"

exec jenkins-backup restore "$1"
