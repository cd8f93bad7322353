#!/usr/bin/env bash
# Build the container image with a real engine and run the checks inside it
# (tests/test_image_built.py). No registry is needed: the base image is bootstrapped from
# Debian's packages (mmdebstrap) and imported into Podman, then passed as PYTHON_IMAGE.
#
# Everything lives in a fresh temporary directory (Podman's storage included) and is removed at
# the end: nothing is cached between runs that a clean machine would lack. Where containers
# cannot run here, the step is skipped with the reason, never silently.
#
# Each stage has a time bound (about 2.5 minutes in all on a 2-core machine; the bounds only
# stop a hung mirror or build from holding CI).
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SUITE (bookworm),
# KEEP_IMAGE_WORK=1 keeps the work directory for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
    echo "image-check: SKIPPED: $*" >&2
    exit 0
}
stamp() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(stamp)" 'BEGIN { printf "%.1f s", b - a }'; }

for tool in podman mmdebstrap; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (.ci/install-system.sh)"
done
[[ $(id -u) -eq 0 ]] || skip "needs root: mmdebstrap's root mode and Podman's overlay storage"

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-bookworm}
work=$(mktemp -d "${TMPDIR:-/tmp}/jenkins-backup-image.XXXXXX")
export CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf"
cleanup() {
    podman rm --all --force >/dev/null 2>&1 || true
    podman rmi --all --force >/dev/null 2>&1 || true
    podman system reset --force >/dev/null 2>&1 || true
    if [[ ${KEEP_IMAGE_WORK:-} != 1 ]]; then
        grep -o " ${work}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# crun refuses a hybrid cgroup layout, runc does not; the default ulimits must stay below the
# machine's hard limits. The overlay driver is about ten times faster than vfs.
cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
cat >"$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
CONF
podman info >"$work/podman-info.txt" 2>&1 || skip "podman does not work here: $(tail -n1 "$work/podman-info.txt")"

base=localhost/jenkins-backup-base:ci
image=localhost/jenkins-backup:ci
all=$(stamp)

# The base: python3 and its venv module, and the host's locally added CA certificates (a
# TLS-intercepting egress signs PyPI's certificate with one of them). The hooks' $1 is
# mmdebstrap's root directory, expanded by mmdebstrap, not here.
t=$(stamp)
# shellcheck disable=SC2016
timeout 900 mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"' \
    --customize-hook='if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"; fi' \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
    "$suite" "$work/base.tar" "$mirror"
timeout 300 podman import --quiet "$work/base.tar" "$base" >/dev/null
rm -f "$work/base.tar"
echo "image-check: base bootstrapped and imported in $(took "$t")"
if ! probe=$(podman run --rm --network=none "$base" python3 -c 'print("ok")' 2>&1); then
    skip "podman cannot run a container here: $probe"
fi

t=$(stamp)
# pip in the build stage trusts the system's CA store (with the local certificates above).
timeout 1200 podman build --quiet --network=host --build-arg PYTHON_IMAGE="$base" \
    --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt -t "$image" . >/dev/null
echo "image-check: image built in $(took "$t")"
size=$(podman image inspect --format '{{.Size}}' "$image")
base_size=$(podman image inspect --format '{{.Size}}' "$base")
echo "image-check: image size $((size / 1000000)) MB (base $((base_size / 1000000)) MB)"

t=$(stamp)
PY=${PYTHON:-.venv/bin/python}
JENKINS_BACKUP_IMAGE="$image" timeout 900 "$PY" -m pytest tests/test_image_built.py -q -rs -p no:cacheprovider
echo "image-check: checks inside the image passed in $(took "$t"); whole step $(took "$all")"
