#!/usr/bin/env bash
# /home/user/bin/backup.sh <number>
#
# Drop-in for the Jenkins Operator's backup-pvc image: the operator execs this script in the
# backup sidecar with the backup number appended. The work is done by `jenkins-backup backup`,
# which reads the same environment (JENKINS_HOME, BACKUP_DIR, BACKUP_COUNT; or
# BACKUP_REPOSITORY for object storage).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "Usage: $0 <backup number>" >&2
  exit 1
fi

# The backup-pvc image archived jobs/ without workspaces and without the top-level
# jobs/*/config.xml (configuration comes from Configuration as Code and seed jobs): that is the
# "history" scope. Keep it unless the resource asks for another one.
export BACKUP_SCOPE="${BACKUP_SCOPE:-history}"

exec jenkins-backup backup "$1"
