"""The pipelines: scope and scan JENKINS_HOME, archive it into a repository, restore it back."""
