#!/usr/bin/env python3
"""Generate realistic, deterministic JENKINS_HOME trees for tests and benchmarks.

Stdlib only. The same ``seed`` and size always give the same tree: names, contents, modes and
mtimes (mtimes are spread over the year before a fixed date). ``add_builds`` then simulates
Jenkins running: new builds in a fraction of the jobs, with real "now" mtimes.

Usable as a module::

    from homegen import generate, add_builds
    stats = generate(Path("home"), size="tiny", seed=1)
    add_builds(Path("home"), fraction=0.05, seed=2)

or as a CLI::

    python tools/homegen.py DIR --size small --seed 1 [--odd]
    python tools/homegen.py DIR --add-builds 0.05 --seed 2
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import random
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROFILES", "Profile", "Stats", "add_builds", "generate", "iter_jobs"]

DAY_NS = 86_400 * 10**9
# Fixed "present" of generated trees, so that mtimes are part of the determinism.
END_NS = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z
WORKSPACE_PREFIX = "workspace"


@dataclass(frozen=True)
class Profile:
    """Shape of a generated home; sizes are medians of log-normal distributions."""

    name: str
    plain_jobs: int
    folders: int
    jobs_per_folder: int
    multibranch: int
    branches: int
    builds: tuple[int, int]  # kept builds per job, min and max
    log_kib: float
    junit_p: float  # share of jobs that publish test results
    artifact_p: float  # share of jobs that archive artifacts
    artifact_kib: float
    artifacts: tuple[int, int]  # archived files per build, min and max
    flownodes: tuple[int, int]  # pipeline builds: workflow/*.xml files (0: one flowNodeStore.xml)
    plugins: int
    plugin_kib: float
    fingerprints: int
    users: int
    nodes: int
    workspace_files: int  # files per workspace directory
    war_files: int
    cache_mib: float


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="tiny",
            plain_jobs=3,
            folders=1,
            jobs_per_folder=3,
            multibranch=1,
            branches=3,
            builds=(3, 10),
            log_kib=6,
            junit_p=0.5,
            artifact_p=0.4,
            artifact_kib=24,
            artifacts=(1, 2),
            flownodes=(0, 0),
            plugins=4,
            plugin_kib=16,
            fingerprints=10,
            users=2,
            nodes=2,
            workspace_files=4,
            war_files=4,
            cache_mib=0.1,
        ),
        Profile(
            name="small",
            plain_jobs=40,
            folders=6,
            jobs_per_folder=7,
            multibranch=4,
            branches=6,
            builds=(10, 50),
            log_kib=30,
            junit_p=0.5,
            artifact_p=0.3,
            artifact_kib=80,
            artifacts=(1, 3),
            flownodes=(0, 0),
            plugins=40,
            plugin_kib=200,
            fingerprints=1000,
            users=10,
            nodes=4,
            workspace_files=25,
            war_files=60,
            cache_mib=4,
        ),
        Profile(
            name="medium",
            plain_jobs=120,
            folders=24,
            jobs_per_folder=9,
            multibranch=14,
            branches=7,
            builds=(30, 120),
            log_kib=19,
            junit_p=0.5,
            artifact_p=0.15,
            artifact_kib=90,
            artifacts=(1, 2),
            flownodes=(0, 0),
            plugins=140,
            plugin_kib=800,
            fingerprints=6000,
            users=40,
            nodes=10,
            workspace_files=40,
            war_files=400,
            cache_mib=60,
        ),
        Profile(
            name="many-files",
            plain_jobs=300,
            folders=60,
            jobs_per_folder=10,
            multibranch=40,
            branches=6,
            builds=(40, 160),
            log_kib=3,
            junit_p=0.4,
            artifact_p=0.1,
            artifact_kib=24,
            artifacts=(1, 2),
            flownodes=(2, 10),
            plugins=60,
            plugin_kib=200,
            fingerprints=20000,
            users=50,
            nodes=10,
            workspace_files=20,
            war_files=200,
            cache_mib=10,
        ),
    )
}


@dataclass(frozen=True)
class Stats:
    """What a generation (or an ``add_builds``) wrote."""

    files: int
    dirs: int
    symlinks: int
    bytes: int
    jobs: int
    builds: int
    workspace_files: int
    workspace_bytes: int
    removed_builds: int = 0
    seconds: float = 0.0
    odd_paths: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


# --------------------------------------------------------------------------------------------
# Writing


class _Writer:
    """Creates files, dirs and symlinks with as few syscalls and Python calls as possible."""

    def __init__(self) -> None:
        self.files = self.dirs = self.symlinks = self.bytes = 0
        self.jobs = self.builds = self.ws_files = self.ws_bytes = self.removed = 0
        self.odd: list[str] = []
        self._dir_times: list[tuple[str, int]] = []

    def mkdir(self, path: str, mtime_ns: int) -> str:
        os.mkdir(path)
        self.dirs += 1
        self._dir_times.append((path, mtime_ns))
        return path

    def write(self, path: str, data: bytes, mtime_ns: int, mode: int = 0o644) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += len(data)

    def ws_write(self, path: str, data: bytes, mtime_ns: int, mode: int = 0o644) -> None:
        self.write(path, data, mtime_ns, mode)
        self.ws_files += 1
        self.ws_bytes += len(data)

    def symlink(self, target: str, path: str, mtime_ns: int) -> None:
        os.symlink(target, path)
        os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        self.symlinks += 1

    def finish(self) -> None:
        """Set directory mtimes, children first (creating entries changes a parent's mtime)."""
        for path, mtime_ns in reversed(self._dir_times):
            os.utime(path, ns=(mtime_ns, mtime_ns))
        self._dir_times.clear()

    def stats(self, seconds: float) -> Stats:
        return Stats(
            self.files,
            self.dirs,
            self.symlinks,
            self.bytes,
            self.jobs,
            self.builds,
            self.ws_files,
            self.ws_bytes,
            self.removed,
            round(seconds, 3),
            tuple(self.odd),
        )


# --------------------------------------------------------------------------------------------
# Vocabulary and text templates (seed-independent, built once)


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _split(
    "api gateway billing search frontend backend auth payments orders catalog inventory "
    "notification reporting analytics mobile web admin portal core common infra deploy "
    "release nightly integration e2e perf docs sdk cli agent worker scheduler ledger "
    "shipping pricing identity profile media upload export import sync cache proxy metrics "
    "audit"
)
_LANG_DIRS = ("src/main/java/com/acme", "src/test/java/com/acme", "lib", "app", "pkg", "scripts")
_PEOPLE = (
    "Alice Martin",
    "Bob Chen",
    "Carla Diaz",
    "Deepak Rao",
    "Emma Novak",
    "Farid Haddad",
    "Grace Kim",
    "Hugo Lefebvre",
    "Ines Costa",
    "Jonas Berg",
    "jenkins-bot",
    "dependabot",
)
_PLUGINS = _split(
    "git git-client workflow-aggregator workflow-job workflow-cps "
    "workflow-durable-task-step credentials credentials-binding plain-credentials "
    "ssh-credentials matrix-auth configuration-as-code kubernetes kubernetes-client-api "
    "junit mailer script-security pipeline-stage-view pipeline-model-definition branch-api "
    "cloudbees-folder timestamper ws-cleanup build-timeout github github-branch-source "
    "github-api blueocean jackson2-api okhttp-api apache-httpcomponents-client-4-api "
    "structs scm-api token-macro durable-task lockable-resources docker-workflow "
    "pipeline-utility-steps ansicolor job-dsl role-strategy ldap email-ext slack prometheus "
    "metrics"
)
_ADJ = ("quick", "lazy", "stale", "flaky", "green", "fresh", "shiny", "brave", "calm", "eager")


def _hex(rng: random.Random, nbytes: int) -> str:
    return rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


@functools.cache
def _timestamps() -> tuple[str, ...]:
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d} " for s in range(86_400))


@functools.cache
def _console_notes() -> tuple[str, ...]:
    """Serialized ConsoleNote blobs that Jenkins embeds in logs (hidden, base64-like)."""
    rng = random.Random("console-notes")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return tuple(
        "\x1b[8mha:////4" + "".join(rng.choices(alphabet, k=rng.randint(120, 260))) + "=\x1b[0m"
        for _ in range(24)
    )


def _maven_lines(rng: random.Random, module: str, n: int) -> list[str]:
    groups = (
        "org/apache/maven/plugins",
        "org/springframework",
        "com/fasterxml/jackson/core",
        "org/junit/jupiter",
        "io/netty",
        "org/slf4j",
        "com/google/guava",
        "org/mockito",
    )
    out = []
    for _ in range(n):
        g = rng.choice(groups)
        a = f"{rng.choice(_WORDS)}-{rng.choice(('core', 'api', 'impl', 'plugin', 'utils'))}"
        v = f"{rng.randint(1, 6)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        k = rng.random()
        if k < 0.45:
            out.append(
                f"[INFO] Downloading from central: https://repo.maven.apache.org/maven2/"
                f"{g}/{a}/{v}/{a}-{v}.{rng.choice(('pom', 'jar'))}\n"
            )
        elif k < 0.8:
            out.append(
                f"[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/"
                f"{g}/{a}/{v}/{a}-{v}.jar ({rng.randint(1, 900)} kB at "
                f"{rng.randint(1, 40)}.{rng.randint(0, 9)} MB/s)\n"
            )
        elif k < 0.9:
            cls = f"com.acme.{module}.{rng.choice(_WORDS).title()}{rng.choice(_WORDS).title()}Test"
            out.append(
                f"[INFO] Tests run: {rng.randint(1, 80)}, Failures: 0, Errors: 0, Skipped: "
                f"{rng.randint(0, 3)}, Time elapsed: {rng.random() * 9:.3f} s - in {cls}\n"
            )
        elif k < 0.96:
            out.append(
                f"[INFO] --- {a}:{v}:{rng.choice(('compile', 'test', 'jar', 'resources'))}"
                f" (default) @ {module} ---\n"
            )
        else:
            out.append(
                f"[WARNING] /var/jenkins_home/workspace/{module}/src/main/java/com/acme/"
                f"{module}/{rng.choice(_WORDS).title()}.java:[{rng.randint(1, 900)},"
                f"{rng.randint(1, 80)}] unchecked conversion\n"
            )
    return out


def _gradle_lines(rng: random.Random, module: str, n: int) -> list[str]:
    tasks = (
        "compileJava",
        "processResources",
        "classes",
        "jar",
        "compileTestJava",
        "test",
        "check",
        "assemble",
        "build",
        "javadoc",
        "spotlessCheck",
    )
    out = []
    for _ in range(n):
        k = rng.random()
        sub = rng.choice(_WORDS)
        if k < 0.35:
            out.append(f"> Task :{module}-{sub}:{rng.choice(tasks)}\n")
        elif k < 0.4:
            out.append(f"> Task :{module}-{sub}:{rng.choice(tasks)} UP-TO-DATE\n")
        elif k < 0.9:
            out.append(
                f"{rng.choice(_WORDS).title()}{rng.choice(_WORDS).title()}Test > "
                f"should{rng.choice(_WORDS).title()}When{rng.choice(_ADJ).title()}() "
                f"PASSED\n"
            )
        else:
            out.append(
                f"w: /var/jenkins_home/workspace/{module}/{sub}/src/main/kotlin/"
                f"{rng.choice(_WORDS).title()}.kt: ({rng.randint(1, 400)}, "
                f"{rng.randint(1, 60)}): Parameter 'it' is never used\n"
            )
    return out


def _npm_lines(rng: random.Random, module: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        k = rng.random()
        pkg = f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}"
        if k < 0.3:
            out.append(
                f"npm WARN deprecated {pkg}@{rng.randint(0, 9)}.{rng.randint(0, 30)}.0: "
                f"this package is no longer maintained\n"
            )
        elif k < 0.7:
            out.append(
                f"  {module}/{pkg}.{rng.choice(('js', 'ts', 'tsx', 'css'))}  "
                f"{rng.randint(1, 900)}.{rng.randint(0, 99)} KiB  [emitted]  "
                f"[{rng.choice(('minimized', 'immutable', 'big'))}]\n"
            )
        else:
            out.append(
                f"  \u2713 {rng.choice(_WORDS)} {rng.choice(_ADJ)} {rng.choice(_WORDS)} "
                f"renders ({rng.randint(1, 400)} ms)\n"
            )
    return out


def _shell_lines(rng: random.Random, module: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.3:
            out.append(f"+ kubectl apply -f deploy/{module}/{rng.choice(_WORDS)}.yaml\n")
        elif k < 0.6:
            out.append(f"{rng.choice(_WORDS)}.apps/{module}-{rng.choice(_WORDS)} configured\n")
        elif k < 0.8:
            out.append(
                f"Step {rng.randint(1, 30)}/{rng.randint(30, 40)} : RUN "
                f"{rng.choice(('apt-get install -y', 'pip install', 'make'))} "
                f"{rng.choice(_WORDS)}\n"
            )
        else:
            out.append(f" ---> {_hex(rng, 6)}\n")
    return out


_STYLES = {"maven": _maven_lines, "gradle": _gradle_lines, "npm": _npm_lines, "shell": _shell_lines}


@dataclass(frozen=True)
class _JobModel:
    """What every build of one job looks like; derived from the job's path alone."""

    relpath: str
    name: str
    pipeline: bool
    style: str
    timestamps: bool
    lines: tuple[str, ...]
    tests: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _job_model(relpath: str, pipeline: bool) -> _JobModel:
    rng = random.Random(f"job-model:{relpath}")
    name = relpath.rsplit("/", 1)[-1]
    module = name.split(".")[0].replace(" ", "-").lower()
    style = rng.choice(tuple(_STYLES))
    lines = _STYLES[style](rng, module, rng.randint(150, 600))
    if pipeline:
        lines += [
            "[Pipeline] }\n",
            "[Pipeline] // stage\n",
            "[Pipeline] sh\n",
            "[Pipeline] { (Build)\n",
            "[Pipeline] withEnv\n",
            "[Pipeline] {\n",
        ] * 8
    lines += rng.sample(_console_notes(), 4)
    tests = tuple(
        f"com.acme.{module}.{rng.choice(_WORDS).title()}{rng.choice(_WORDS).title()}Test"
        for _ in range(rng.randint(3, 25))
    )
    return _JobModel(relpath, name, pipeline, style, rng.random() < 0.5, tuple(lines), tests)


# --------------------------------------------------------------------------------------------
# File contents


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * rng.lognormvariate(0.0, sigma)


def _log_text(
    rng: random.Random, job: _JobModel, number: int, result: str, size: int, start_ns: int
) -> bytes:
    head = (
        f"Started by {rng.choice(('timer', 'an SCM change', 'user admin', 'GitHub push'))}\n"
        f"Running as SYSTEM\n"
        f"Building in workspace /var/jenkins_home/workspace/{job.relpath}\n"
        f"The recommended git tool is: NONE\n"
        f" > git rev-parse --resolve-git-dir /var/jenkins_home/workspace/{job.name}/.git\n"
        f"Checking out Revision {_hex(rng, 20)} (refs/remotes/origin/main)\n"
        f'Commit message: "{rng.choice(_WORDS)} {rng.choice(_WORDS)}: build #{number}"\n'
    )
    n = max(1, size // 88)
    body = rng.choices(job.lines, k=n)
    if job.timestamps:
        ts = _timestamps()
        second = (start_ns // 10**9) % 86_400
        shift = rng.randint(2, 6)
        body = [ts[(second + (i >> shift)) % 86_400] + line for i, line in enumerate(body)]
    return (head + "".join(body) + f"Finished: {result}\n").encode()


def _build_xml(
    rng: random.Random, job: _JobModel, number: int, result: str, start_ns: int, duration_ms: int
) -> bytes:
    tag = "flow-build" if job.pipeline else "build"
    cause = rng.choice(
        (
            "hudson.triggers.TimerTrigger_-TimerTriggerCause",
            "hudson.triggers.SCMTrigger_-SCMTriggerCause",
            "hudson.model.Cause_-UserIdCause",
        )
    )
    sha = _hex(rng, 20)
    return (
        f"<?xml version='1.1' encoding='UTF-8'?>\n<{tag}>\n  <actions>\n"
        f'    <hudson.model.CauseAction>\n      <causeBag class="linked-hash-map">\n'
        f"        <entry>\n          <{cause}/>\n          <int>1</int>\n        </entry>\n"
        f"      </causeBag>\n    </hudson.model.CauseAction>\n"
        f'    <hudson.plugins.git.util.BuildData plugin="git@5.2.1">\n'
        f"      <buildsByBranchName>\n        <entry>\n"
        f"          <string>refs/remotes/origin/main</string>\n"
        f"          <hudson.plugins.git.util.Build>\n"
        f'            <marked plugin="git-client@4.6.0">\n'
        f"              <sha1>{sha}</sha1>\n            </marked>\n"
        f"            <hudsonBuildNumber>{number}</hudsonBuildNumber>\n"
        f"          </hudson.plugins.git.util.Build>\n        </entry>\n"
        f"      </buildsByBranchName>\n"
        f"      <remoteUrls>\n        <string>https://git.example.com/acme/"
        f"{job.name.lower().replace(' ', '-')}.git</string>\n      </remoteUrls>\n"
        f"    </hudson.plugins.git.util.BuildData>\n  </actions>\n"
        f"  <queueId>{rng.randint(1, 10**6)}</queueId>\n"
        f"  <timestamp>{start_ns // 10**6}</timestamp>\n"
        f"  <startTime>{start_ns // 10**6 + rng.randint(5, 900)}</startTime>\n"
        f"  <result>{result}</result>\n  <duration>{duration_ms}</duration>\n"
        f"  <charset>UTF-8</charset>\n  <keepLog>false</keepLog>\n"
        f"  <builtOn>{rng.choice(('', 'agent-1', 'agent-2', 'k8s-pod-' + _hex(rng, 3)))}"
        f"</builtOn>\n  <workspace>/var/jenkins_home/workspace/{job.relpath}</workspace>\n"
        f"  <hudsonVersion>2.440.3</hudsonVersion>\n</{tag}>\n"
    ).encode()


def _changelog(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.choice((0, 1, 1, 2, 3, 5))):
        who = rng.choice(_PEOPLE)
        mail = who.lower().replace(" ", ".") + "@example.com"
        when = 1_700_000_000 + rng.randint(0, 3 * 10**7)
        parts.append(
            f"commit {_hex(rng, 20)}\ntree {_hex(rng, 20)}\nparent {_hex(rng, 20)}\n"
            f"author {who} <{mail}> {when} +0000\ncommitter {who} <{mail}> {when} +0000\n\n"
            f"    {rng.choice(_WORDS)}: {rng.choice(_ADJ)} fix for {rng.choice(_WORDS)} "
            f"({rng.randint(100, 9999)})\n\n"
        )
        for _ in range(rng.randint(1, 6)):
            path = f"{rng.choice(_LANG_DIRS)}/{rng.choice(_WORDS)}/{rng.choice(_WORDS).title()}"
            parts.append(f":100644 100644 {_hex(rng, 20)} {_hex(rng, 20)} M\t{path}.java\n")
    return "".join(parts).encode()


def _junit(rng: random.Random, job: _JobModel, duration_ms: int) -> bytes:
    out = [
        "<?xml version='1.1' encoding='UTF-8'?>\n<result plugin=\"junit@1256.v002534a_5f33e\">"
        "\n  <suites>\n"
    ]
    for suite in job.tests:
        out.append(
            f"    <suite>\n      <file>target/surefire-reports/TEST-{suite}.xml</file>\n"
            f"      <name>{suite}</name>\n      <duration>{rng.random() * 5:.3f}"
            f"</duration>\n      <cases>\n"
        )
        for _ in range(rng.randint(2, 8)):
            out.append(
                f"        <case>\n          <duration>{rng.random():.3f}</duration>\n"
                f"          <className>{suite}</className>\n          <testName>should"
                f"{rng.choice(_WORDS).title()}{rng.choice(_ADJ).title()}</testName>\n"
                f"          <skipped>false</skipped>\n          <failedSince>0"
                f"</failedSince>\n        </case>\n"
            )
        out.append("      </cases>\n    </suite>\n")
    out.append(
        f"  </suites>\n  <duration>{duration_ms / 1000:.3f}</duration>\n"
        f"  <keepLongStdio>false</keepLongStdio>\n</result>\n"
    )
    return "".join(out).encode()


def _flownode(rng: random.Random, node: int) -> bytes:
    return (
        "<?xml version='1.1' encoding='UTF-8'?>\n"
        '<Tag plugin="workflow-support@865.v43e78cc44e0d">'
        f'\n  <node class="cps.n.StepAtomNode" plugin="workflow-cps@3894.vd0f0248b_a_fc4">\n'
        f"    <parentIds>\n      <string>{node - 1}</string>\n    </parentIds>\n"
        f"    <id>{node}</id>\n    <descriptorId>org.jenkinsci.plugins.workflow.steps."
        f"{rng.choice(('durable_task.ShellStep', 'EchoStep', 'StageStep', 'EnvStep'))}"
        f"</descriptorId>\n  </node>\n  <actions>\n    <wf.a.TimingAction>\n"
        f"      <startTime>{1_700_000_000_000 + rng.randint(0, 10**10)}</startTime>\n"
        f"    </wf.a.TimingAction>\n  </actions>\n</Tag>\n"
    ).encode()


def _job_config(rng: random.Random, pipeline: bool, branch: bool = False) -> bytes:
    desc = f"{rng.choice(_ADJ)} {rng.choice(_WORDS)} {rng.choice(_WORDS)} job"
    if pipeline:
        prop = (
            "    <org.jenkinsci.plugins.workflow.multibranch.BranchJobProperty/>\n"
            if branch
            else ""
        )
        return (
            f"<?xml version='1.1' encoding='UTF-8'?>\n<flow-definition plugin=\"workflow-job@"
            f'1400.v7fd111b_ec82f">\n  <description>{desc}</description>\n'
            f"  <keepDependencies>false</keepDependencies>\n  <properties>\n{prop}"
            f'    <jenkins.model.BuildDiscarderProperty>\n      <strategy class="hudson.tasks.'
            f'LogRotator">\n        <daysToKeep>-1</daysToKeep>\n        <numToKeep>'
            f"{rng.randint(20, 200)}</numToKeep>\n      </strategy>\n"
            f"    </jenkins.model.BuildDiscarderProperty>\n  </properties>\n"
            f'  <definition class="org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition">\n'
            f"    <scriptPath>Jenkinsfile</scriptPath>\n    <lightweight>true</lightweight>\n"
            f"  </definition>\n  <triggers/>\n  <disabled>false</disabled>\n"
            f"</flow-definition>\n"
        ).encode()
    return (
        f"<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <description>{desc}</description>\n"
        f'  <keepDependencies>false</keepDependencies>\n  <scm class="hudson.plugins.git.GitSCM"'
        f' plugin="git@5.2.1">\n    <userRemoteConfigs>\n      <hudson.plugins.git.'
        f"UserRemoteConfig>\n        <url>https://git.example.com/acme/{rng.choice(_WORDS)}.git"
        f"</url>\n      </hudson.plugins.git.UserRemoteConfig>\n    </userRemoteConfigs>\n"
        f"  </scm>\n  <canRoam>true</canRoam>\n  <triggers>\n    <hudson.triggers.TimerTrigger>\n"
        f"      <spec>H {rng.randint(0, 23)} * * *</spec>\n    </hudson.triggers.TimerTrigger>\n"
        f"  </triggers>\n  <builders>\n    <hudson.tasks.Shell>\n      <command>./mvnw -B verify"
        f"</command>\n    </hudson.tasks.Shell>\n  </builders>\n  <publishers/>\n</project>\n"
    ).encode()


def _xml_blob(rng: random.Random, root: str, entries: int) -> bytes:
    body = []
    for _ in range(entries):
        key = f"{rng.choice(_WORDS)}.{rng.choice(_WORDS).title()}"
        body.append(f"  <{key}>{rng.choice(_ADJ)}-{rng.randint(0, 99)}</{key}>\n")
    return f"<?xml version='1.1' encoding='UTF-8'?>\n<{root}>\n{''.join(body)}</{root}>\n".encode()


def _text_source(rng: random.Random, lines: int) -> bytes:
    return "".join(
        f"    {rng.choice(('public', 'private', 'final', 'return', 'if (', 'for ('))} "
        f"{rng.choice(_WORDS)}{rng.choice(_WORDS).title()}({rng.choice(_WORDS)});\n"
        for _ in range(lines)
    ).encode()


# --------------------------------------------------------------------------------------------
# Jobs and builds

_RESULTS = ("SUCCESS",) * 14 + ("FAILURE", "FAILURE", "UNSTABLE", "ABORTED")
_PERMALINKS = (
    "lastSuccessfulBuild",
    "lastStableBuild",
    "lastFailedBuild",
    "lastUnstableBuild",
    "lastUnsuccessfulBuild",
)


@dataclass
class _BuildShape:
    """Per-job sizes that all its builds share, with some per-build noise."""

    log_kib: float
    junit: bool
    artifacts: tuple[tuple[str, float, int], ...]  # (relative path, KiB, mode)
    flownodes: int


def _job_shape(rng: random.Random, p: Profile, job: _JobModel) -> _BuildShape:
    arts: list[tuple[str, float, int]] = []
    if rng.random() < p.artifact_p:
        base = job.name.split(".")[0].replace(" ", "-").lower()
        kinds = (
            f"target/{base}.jar",
            f"dist/{base}.tar.gz",
            f"build/libs/{base}-all.jar",
            f"out/{base}.zip",
            "reports/coverage.bin",
            f"bin/{base}",
        )
        for rel in rng.sample(kinds, rng.randint(*p.artifacts)):
            mode = 0o755 if rel.startswith("bin/") else 0o644
            arts.append((rel, _lognormal(rng, p.artifact_kib, 0.9), mode))
    nodes = rng.randint(*p.flownodes) if job.pipeline else 0
    return _BuildShape(
        _lognormal(rng, p.log_kib, 0.8), rng.random() < p.junit_p, tuple(arts), nodes
    )


def _write_build(
    w: _Writer,
    rng: random.Random,
    builds: str,
    job: _JobModel,
    shape: _BuildShape,
    number: int,
    start_ns: int,
    result: str,
) -> None:
    duration_ms = rng.randint(20_000, 1_800_000)
    end_ns = start_ns + duration_ms * 10**6
    d = w.mkdir(f"{builds}/{number}", end_ns)
    w.builds += 1
    w.write(f"{d}/build.xml", _build_xml(rng, job, number, result, start_ns, duration_ms), end_ns)
    size = int(shape.log_kib * 1024 * rng.lognormvariate(0.0, 0.3))
    w.write(f"{d}/log", _log_text(rng, job, number, result, size, start_ns), end_ns)
    w.write(f"{d}/changelog{'0' if job.pipeline else ''}.xml", _changelog(rng), start_ns)
    if shape.junit and result != "ABORTED":
        w.write(f"{d}/junitResult.xml", _junit(rng, job, duration_ms), end_ns)
    if job.pipeline:
        w.write(f"{d}/log-index", f"0\n{size // 3} 2\n{size // 2}\n".encode(), end_ns)
        if shape.flownodes:
            wf = w.mkdir(f"{d}/workflow", end_ns)
            for node in range(2, 2 + shape.flownodes):
                w.write(f"{wf}/{node}.xml", _flownode(rng, node), end_ns)
        else:
            wf = w.mkdir(f"{d}/workflow-completed", end_ns)
            data = b"".join(_flownode(rng, node) for node in range(2, rng.randint(8, 40)))
            w.write(f"{wf}/flowNodeStore.xml", data, end_ns)
    if shape.artifacts and result in ("SUCCESS", "UNSTABLE"):
        made: set[str] = set()
        archive = w.mkdir(f"{d}/archive", end_ns)
        for rel, kib, mode in shape.artifacts:
            parent = archive
            for part in rel.split("/")[:-1]:
                parent = f"{parent}/{part}"
                if parent not in made:
                    made.add(parent)
                    w.mkdir(parent, end_ns)
            n = int(kib * 1024 * rng.uniform(0.9, 1.1))
            w.write(f"{archive}/{rel}", rng.randbytes(n), end_ns, mode)


def _write_workspace(w: _Writer, rng: random.Random, path: str, p: Profile, mtime: int) -> None:
    ws = w.mkdir(path, mtime)
    w.ws_write(f"{ws}/pom.xml", _xml_blob(rng, "project", 40), mtime)
    w.ws_write(f"{ws}/mvnw", b'#!/bin/sh\nexec java -jar .mvn/wrapper.jar "$@"\n', mtime, 0o755)
    src = ws
    for part in rng.choice(_LANG_DIRS).split("/"):
        src = w.mkdir(f"{src}/{part}", mtime)
    for i in range(max(0, p.workspace_files - 4)):
        w.ws_write(
            f"{src}/{rng.choice(_WORDS).title()}{i}.java",
            _text_source(rng, rng.randint(20, 300)),
            mtime,
        )
    target = w.mkdir(f"{ws}/target", mtime)
    w.ws_write(f"{target}/app.jar", rng.randbytes(int(_lognormal(rng, 64, 1) * 1024)), mtime)
    git = w.mkdir(f"{ws}/.git", mtime)
    w.ws_write(f"{git}/HEAD", b"ref: refs/heads/main\n", mtime)


def _write_job(
    w: _Writer,
    p: Profile,
    seed: int,
    jobs_dir: str,
    rel_parent: str,
    name: str,
    pipeline: bool,
    branch: bool = False,
) -> None:
    relpath = f"{rel_parent}{name}"
    rng = random.Random(f"{seed}:job:{relpath}")
    job = _job_model(relpath, pipeline)
    shape = _job_shape(rng, p, job)
    count = rng.randint(*p.builds)
    last = count + rng.randint(0, 4 * count)
    numbers = sorted(rng.sample(range(max(1, last - 2 * count), last + 1), count))
    span_ns = rng.randint(5, 365) * DAY_NS
    first_ns = END_NS - rng.randint(0, 10) * DAY_NS - span_ns
    step_ns = span_ns // max(1, count)
    created_ns = first_ns - rng.randint(1, 300) * DAY_NS

    d = w.mkdir(f"{jobs_dir}/{name}", END_NS - rng.randint(0, 30) * DAY_NS)
    w.jobs += 1
    w.write(f"{d}/config.xml", _job_config(rng, pipeline, branch), created_ns)
    builds = w.mkdir(f"{d}/builds", END_NS - rng.randint(0, 10) * DAY_NS)
    w.write(f"{builds}/legacyIds", b"", created_ns)
    latest: dict[str, int] = {}
    start_ns = first_ns
    for number in numbers:
        result = rng.choice(_RESULTS)
        _write_build(w, rng, builds, job, shape, number, start_ns, result)
        ok = result in ("SUCCESS", "UNSTABLE")
        for link, hit in zip(
            _PERMALINKS,
            (ok, result == "SUCCESS", result == "FAILURE", result == "UNSTABLE", not ok),
            strict=True,
        ):
            if hit:
                latest[link] = number
        start_ns += step_ns
    for link in _PERMALINKS:  # Jenkins links a missing permalink to -1 (a dangling symlink)
        w.symlink(str(latest.get(link, -1)), f"{builds}/{link}", start_ns)
    w.symlink("builds/lastSuccessfulBuild", f"{d}/lastSuccessful", start_ns)
    w.symlink("builds/lastStableBuild", f"{d}/lastStable", start_ns)
    w.write(f"{d}/nextBuildNumber", f"{numbers[-1] + 1}\n".encode(), start_ns)
    if not pipeline and rng.random() < 0.5:  # classic per-job workspaces, several variants
        _write_workspace(w, rng, f"{d}/{WORKSPACE_PREFIX}", p, start_ns)
        if rng.random() < 0.5:
            tmp = w.mkdir(f"{d}/{WORKSPACE_PREFIX}@tmp", start_ns)
            w.ws_write(
                f"{tmp}/durable-{_hex(rng, 4)}", b"#!/bin/sh -xe\n./mvnw verify\n", start_ns, 0o700
            )
        if rng.random() < 0.3:
            _write_workspace(w, rng, f"{d}/{WORKSPACE_PREFIX}@2", p, start_ns)


def _write_jobs(w: _Writer, p: Profile, seed: int, root: str) -> None:
    rng = random.Random(f"{seed}:jobs")
    jobs_dir = w.mkdir(f"{root}/jobs", END_NS)
    used: set[str] = set()

    def fresh(parts: int = 2) -> str:
        for attempt in range(1_000_000):
            name = "-".join(rng.choice(_WORDS) for _ in range(parts))
            if attempt >= 20:
                name = f"{name}-{attempt}"
            if name not in used:
                used.add(name)
                return name
        raise AssertionError("unreachable")

    names = ["Legacy Build (old)"] + [fresh() for _ in range(p.plain_jobs - 1)]
    for name in names:
        _write_job(w, p, seed, jobs_dir, "", name, rng.random() < 0.5)

    def folder_config(kind: str) -> bytes:
        return (
            f"<?xml version='1.1' encoding='UTF-8'?>\n<{kind} plugin=\"cloudbees-folder@6.9"
            f'28.v7c780211d66e">\n  <description>{rng.choice(_WORDS)}</description>\n'
            f"  <views/>\n</{kind}>\n"
        ).encode()

    def multibranch(parent_dir: str, rel_parent: str) -> None:
        name = f"{fresh(1)}-service"
        mb = w.mkdir(f"{parent_dir}/{name}", END_NS)
        w.write(
            f"{mb}/config.xml",
            folder_config("org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"),
            END_NS - 90 * DAY_NS,
        )
        idx = w.mkdir(f"{mb}/indexing", END_NS)
        w.write(f"{idx}/indexing.xml", _xml_blob(rng, "jenkins.branch.IndexingCause", 6), END_NS)
        w.write(
            f"{idx}/indexing.log",
            "".join(
                f"Checking branch {b}\n      \u2018Jenkinsfile\u2019 found\n    Met criteria\n"
                for b in range(p.branches * 3)
            ).encode(),
            END_NS,
        )
        branches = w.mkdir(f"{mb}/branches", END_NS)
        pool = ["main", "develop"] + [f"PR-{rng.randint(1, 4000)}" for _ in range(p.branches)]
        pool += [f"feature%2F{fresh(1)}", f"release-2.{rng.randint(0, 40)}.{_hex(rng, 3)}"]
        for branch in list(dict.fromkeys(pool))[: p.branches]:
            _write_job(w, p, seed, branches, f"{rel_parent}{name}/", branch, True, branch=True)

    for f in range(p.folders):
        name = f"team-{fresh(1)}"
        fd = w.mkdir(f"{jobs_dir}/{name}", END_NS)
        w.write(
            f"{fd}/config.xml",
            folder_config("com.cloudbees.hudson.plugins.folder.Folder"),
            END_NS - 200 * DAY_NS,
        )
        inner = w.mkdir(f"{fd}/jobs", END_NS)
        for _ in range(p.jobs_per_folder):
            _write_job(w, p, seed, inner, f"{name}/", fresh(), rng.random() < 0.6)
        if f % 2 == 0:  # nested folder: jobs/<folder>/jobs/<sub>/jobs/<job>
            sub = f"{fresh(1)}-apps"
            sd = w.mkdir(f"{inner}/{sub}", END_NS)
            w.write(
                f"{sd}/config.xml",
                folder_config("com.cloudbees.hudson.plugins.folder.Folder"),
                END_NS - 100 * DAY_NS,
            )
            sub_jobs = w.mkdir(f"{sd}/jobs", END_NS)
            _write_job(w, p, seed, sub_jobs, f"{name}/{sub}/", fresh(), False)
        if f % 3 == 0:  # multibranch inside a folder
            multibranch(inner, f"{name}/")
    for _ in range(p.multibranch):
        multibranch(jobs_dir, "")


# --------------------------------------------------------------------------------------------
# The rest of the home


def _write_root(w: _Writer, rng: random.Random, p: Profile, root: str) -> None:
    t = END_NS - 2 * DAY_NS
    for name, entries in (
        ("config.xml", 120),
        ("credentials.xml", 30),
        ("hudson.model.UpdateCenter.xml", 4),
        ("hudson.plugins.git.GitTool.xml", 3),
        ("jenkins.model.JenkinsLocationConfiguration.xml", 3),
        ("hudson.tasks.Maven.xml", 4),
        ("nodeMonitors.xml", 12),
        ("queue.xml", 8),
        ("io.jenkins.plugins.casc.CasCGlobalConfig.xml", 2),
        ("jenkins.telemetry.Correlator.xml", 1),
    ):
        w.write(f"{root}/{name}", _xml_blob(rng, name.removesuffix(".xml"), entries), t)
    w.write(f"{root}/secret.key", _hex(rng, 32).encode(), t - 400 * DAY_NS, 0o600)
    w.write(f"{root}/secret.key.not-so-secret", b"", t - 400 * DAY_NS)
    w.write(f"{root}/identity.key.enc", rng.randbytes(1_232), t - 400 * DAY_NS, 0o600)
    w.write(f"{root}/jenkins.install.InstallUtil.lastExecVersion", b"2.440.3", t)
    w.write(f"{root}/jenkins.install.UpgradeWizard.state", b"2.440.3", t)
    w.write(f"{root}/.lastStarted", b"", t)
    w.write(f"{root}/atomic{rng.randint(10**17, 10**18)}.tmp", b"<?xml", t)

    sec = w.mkdir(f"{root}/secrets", t)
    w.write(f"{sec}/master.key", _hex(rng, 256).encode(), t - 400 * DAY_NS, 0o600)
    w.write(f"{sec}/hudson.util.Secret", rng.randbytes(272), t - 400 * DAY_NS, 0o600)
    w.write(f"{sec}/jenkins.model.Jenkins.crumbSalt", rng.randbytes(272), t, 0o600)
    w.write(
        f"{sec}/org.jenkinsci.main.modules.instance_identity.InstanceIdentity.KEY",
        rng.randbytes(1_216),
        t,
        0o600,
    )
    w.write(f"{sec}/initialAdminPassword", (_hex(rng, 16) + "\n").encode(), t, 0o600)
    filters = w.mkdir(f"{sec}/filepath-filters.d", t)
    w.write(f"{filters}/30-default.conf", b"allow read,stat <BUILDDIR>/.+\n" * 8, t)

    users = w.mkdir(f"{root}/users", t)
    ids = [f"{rng.choice(_PEOPLE).split()[0].lower()}{i}" for i in range(p.users)]
    w.write(
        f"{users}/users.xml",
        "".join(
            f"<entry><string>{u}</string><string>{u}_{_hex(rng, 8)}</string></entry>\n" for u in ids
        ).encode(),
        t,
    )
    for u in ids:
        ud = w.mkdir(f"{users}/{u}_{_hex(rng, 8)}", t)
        w.write(f"{ud}/config.xml", _xml_blob(rng, "user", 25), t - rng.randint(0, 300) * DAY_NS)

    nodes = w.mkdir(f"{root}/nodes", t)
    for i in range(p.nodes):
        nd = w.mkdir(f"{nodes}/agent-{i}", t)
        w.write(f"{nd}/config.xml", _xml_blob(rng, "slave", 15), t)

    plugins = w.mkdir(f"{root}/plugins", t)
    names = list(_PLUGINS) + [f"acme-plugin-{i}" for i in range(max(0, p.plugins - len(_PLUGINS)))]
    for name in names[: p.plugins]:
        size = int(_lognormal(rng, p.plugin_kib, 1.0) * 1024)
        w.write(f"{plugins}/{name}.jpi", rng.randbytes(size), t - rng.randint(0, 200) * DAY_NS)
        if rng.random() < 0.1:
            w.write(f"{plugins}/{name}.jpi.pinned", b"", t)
        ex = w.mkdir(f"{plugins}/{name}", t)
        meta = w.mkdir(f"{ex}/META-INF", t)
        w.write(
            f"{meta}/MANIFEST.MF",
            f"Manifest-Version: 1.0\nShort-Name: {name}\n"
            f"Plugin-Version: {rng.randint(1, 900)}.v{_hex(rng, 4)}\n".encode(),
            t,
        )
        lib = w.mkdir(f"{ex}/WEB-INF", t)
        w.write(f"{lib}/licenses.xml", _xml_blob(rng, "licenses", 20), t)
        libs = w.mkdir(f"{lib}/lib", t)
        w.write(f"{libs}/{name}.jar", rng.randbytes(size * 9 // 10), t)

    fp = w.mkdir(f"{root}/fingerprints", t)
    made: set[str] = set()
    for _ in range(p.fingerprints):
        h = _hex(rng, 16)
        a, b = f"{fp}/{h[:2]}", f"{fp}/{h[:2]}/{h[2:4]}"
        for dd in (a, b):
            if dd not in made:
                made.add(dd)
                w.mkdir(dd, t)
        w.write(
            f"{b}/{h[4:]}.xml", _xml_blob(rng, "fingerprint", 10), t - rng.randint(0, 365) * DAY_NS
        )

    caches = w.mkdir(f"{root}/caches", t)
    for _ in range(max(1, int(p.cache_mib // 8))):
        g = w.mkdir(f"{caches}/git-{_hex(rng, 16)}", t)
        w.write(f"{g}/HEAD", b"ref: refs/heads/main\n", t)
        pack = w.mkdir(f"{g}/objects", t)
        w.write(
            f"{pack}/pack-{_hex(rng, 20)}.pack", rng.randbytes(int(min(p.cache_mib, 8) * 2**20)), t
        )

    logs = w.mkdir(f"{root}/logs", t)
    tasks = w.mkdir(f"{logs}/tasks", t)
    for task in ("Fingerprint cleanup", "Workspace clean-up", "Download metadata"):
        w.write(
            f"{tasks}/{task}.log", (f"Started {task}\nFinished {task}. 12 ms\n" * 20).encode(), t
        )

    war = w.mkdir(f"{root}/war", t - 30 * DAY_NS)
    web = w.mkdir(f"{war}/WEB-INF", t - 30 * DAY_NS)
    wlib = w.mkdir(f"{web}/lib", t - 30 * DAY_NS)
    for i in range(p.war_files):
        w.write(
            f"{wlib}/lib-{i}.jar",
            rng.randbytes(int(_lognormal(rng, 40, 1.2) * 1024)),
            t - 30 * DAY_NS,
        )

    updates = w.mkdir(f"{root}/updates", t)
    w.write(
        f"{updates}/default.json",
        "".join(
            f'{{"name":"{n}","version":"{rng.randint(1, 900)}","url":"https://updates.example/{n}'
            f'.hpi","dependencies":[]}},\n'
            for n in names * 20
        ).encode(),
        t,
    )

    top_ws = w.mkdir(f"{root}/{WORKSPACE_PREFIX}", t)
    for i in range(max(2, p.plain_jobs // 4)):
        name = f"{rng.choice(_WORDS)}-{i}"
        _write_workspace(w, rng, f"{top_ws}/{name}", p, t)
        if i % 3 == 0:
            tmp = w.mkdir(f"{top_ws}/{name}@tmp", t)
            w.ws_write(f"{tmp}/secretFiles", b"", t)
        if i % 4 == 0:
            _write_workspace(w, rng, f"{top_ws}/{name}@2", p, t)


def _write_odd(w: _Writer, root: str) -> None:
    """Names and file types that a backup tool must survive."""
    base = f"{root}/jobs/Legacy Build (old)/builds"
    number = max(int(n) for n in os.listdir(base) if n.isdigit())
    odd = w.mkdir(f"{base}/{number}/archive-odd", END_NS)
    raw = os.fsencode(odd)
    names = [
        b"new\nline.txt",
        b"latin1-\xe9t\xe9.txt",
        b"n" * 251 + b".txt",
        "ünïcødé-名前.txt".encode(),
        b"-starts-with-dash",
        b" spaces and \\ back slash ",
    ]
    for name in names:
        path = os.fsdecode(raw + b"/" + name)
        w.write(path, b"odd " + name + b"\n", END_NS)
        w.odd.append(path)
    w.write(f"{odd}/empty", b"", END_NS)
    w.write(f"{odd}/run.sh", b"#!/bin/sh\necho hi\n", END_NS, 0o755)
    w.mkdir(f"{odd}/empty-dir", END_NS)
    os.mkfifo(f"{odd}/fifo")
    w.symlink("does-not-exist", f"{odd}/broken-link", END_NS)
    w.symlink("/nonexistent/absolute/target", f"{odd}/absolute-link", END_NS)
    w.odd += [
        f"{odd}/{n}"
        for n in ("empty", "run.sh", "empty-dir", "fifo", "broken-link", "absolute-link")
    ]


def generate(
    root: Path, *, size: str | Profile = "tiny", seed: int = 0, odd: bool = False
) -> Stats:
    """Create a JENKINS_HOME at ``root`` (which must be missing or empty) and return its stats."""
    t0 = time.perf_counter()
    p = PROFILES[size] if isinstance(size, str) else size
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    w = _Writer()
    top = str(root)
    _write_root(w, random.Random(f"{seed}:root"), p, top)
    _write_jobs(w, p, seed, top)
    if odd:
        _write_odd(w, top)
    w.finish()
    os.utime(top, ns=(END_NS, END_NS))
    return w.stats(time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------
# Simulating Jenkins at work


def iter_jobs(root: Path) -> Iterator[Path]:
    """Yield every buildable job directory (plain, in folders, multibranch branches), sorted."""

    def walk(jobs_dir: Path) -> Iterator[Path]:
        for entry in sorted(os.scandir(jobs_dir), key=lambda e: e.name):
            if not entry.is_dir(follow_symlinks=False):
                continue
            d = Path(entry.path)
            if (d / "builds").is_dir():
                yield d
            for child in ("jobs", "branches"):
                if (d / child).is_dir():
                    yield from walk(d / child)

    yield from walk(root / "jobs")


def _relpath(root: Path, job_dir: Path) -> str:
    parts = job_dir.relative_to(root / "jobs").parts
    return "/".join(x for i, x in enumerate(parts) if i % 2 == 0)


def add_builds(
    root: Path,
    fraction: float = 0.05,
    seed: int = 1,
    *,
    now_ns: int | None = None,
    rotate: bool = True,
) -> Stats:
    """Add one new build to ``fraction`` of the jobs, as Jenkins would, and return what changed.

    Each new build is shaped like the job's latest one (files, sizes, artifacts). Permalinks and
    ``nextBuildNumber`` are updated; with ``rotate`` half of the touched jobs also drop their
    oldest build (build discarders); one workspace file per touched job changes too.
    """
    t0 = time.perf_counter()
    now = time.time_ns() if now_ns is None else now_ns
    rng = random.Random(f"{seed}:add-builds")
    jobs = list(iter_jobs(root))
    w = _Writer()
    if not jobs:
        return w.stats(0.0)
    chosen = rng.sample(jobs, max(1, round(fraction * len(jobs))))
    for job_dir in sorted(chosen):
        w.jobs += 1
        _add_one(w, root, job_dir, random.Random(f"{seed}:{job_dir}"), now, rotate)
    w.finish()
    return w.stats(time.perf_counter() - t0)


def _add_one(w: _Writer, root: Path, d: Path, rng: random.Random, now: int, rotate: bool) -> None:
    builds = d / "builds"
    numbers = sorted(int(n) for n in os.listdir(builds) if n.isdigit())
    pipeline = (d / "config.xml").read_bytes().lstrip().find(b"<flow-definition") >= 0
    job = _job_model(_relpath(root, d), pipeline)
    nb = d / "nextBuildNumber"
    number = int(nb.read_text().strip()) if nb.exists() else (numbers[-1] + 1 if numbers else 1)

    arts: list[tuple[str, float, int]] = []
    log_kib, junit, nodes = 8.0, False, 0
    if numbers:
        prev = builds / str(numbers[-1])
        log_kib = (prev / "log").stat().st_size / 1024 if (prev / "log").exists() else 8.0
        junit = (prev / "junitResult.xml").exists()
        if (prev / "workflow").is_dir():
            nodes = len(os.listdir(prev / "workflow"))
        archive = prev / "archive"
        for dirpath, _, files in os.walk(archive):
            for f in files:
                full = Path(dirpath) / f
                st = full.lstat()
                if stat.S_ISREG(st.st_mode):
                    arts.append(
                        (
                            str(full.relative_to(archive)),
                            st.st_size / 1024,
                            stat.S_IMODE(st.st_mode),
                        )
                    )
    shape = _BuildShape(log_kib, junit, tuple(arts), nodes)
    start = now - rng.randint(60, 1_800) * 10**9
    _write_build(w, rng, str(builds), job, shape, number, start, "SUCCESS")
    for link in ("lastSuccessfulBuild", "lastStableBuild"):
        tmp = builds / f".{link}.tmp"
        os.symlink(str(number), tmp)
        os.replace(tmp, builds / link)
        w.symlinks += 1
    tmp_nb = d / ".nextBuildNumber.tmp"
    tmp_nb.write_text(f"{number + 1}\n")
    os.replace(tmp_nb, nb)
    w.files += 1
    if rotate and len(numbers) > 1 and rng.random() < 0.5:
        _rmtree(builds / str(numbers[0]))
        w.removed += 1
    ws = d / WORKSPACE_PREFIX
    if ws.is_dir():
        (ws / "pom.xml").write_bytes(_xml_blob(rng, "project", 40))
        w.ws_files += 1


def _rmtree(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames + [n for n in dirnames if os.path.islink(Path(dirpath) / n)]:
            os.unlink(Path(dirpath) / name)
        for name in dirnames:
            if not os.path.islink(Path(dirpath) / name):
                os.rmdir(Path(dirpath) / name)
    os.rmdir(path)


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: generate a tree, or add builds to an existing one."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--size", choices=sorted(PROFILES), default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--odd", action="store_true", help="add odd names, a FIFO, broken symlinks")
    ap.add_argument(
        "--add-builds",
        type=float,
        metavar="FRACTION",
        help="add builds to FRACTION of the jobs of an existing tree",
    )
    args = ap.parse_args(argv)
    if args.add_builds is not None:
        stats = add_builds(args.dir, args.add_builds, seed=args.seed)
    else:
        stats = generate(args.dir, size=args.size, seed=args.seed, odd=args.odd)
    print(stats.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
