"""jenkins-backup: incremental, deduplicated backup and restore of JENKINS_HOME."""

__version__ = "0.1.0"
