#!/usr/bin/env bash
# Install the Debian packages the tests use: faketime (clock skew), e2fsprogs (an ext4 image
# with coarse time stamps), podman, runc and mmdebstrap (the image build), prometheus (promtool
# and a real server). Idempotent; only as root (or with sudo) on a Debian-like machine. A
# package that cannot be installed makes its tests skip with the reason; this script says which
# and exits 0, so the rest of CI runs.
set -uo pipefail

pkgs=(faketime e2fsprogs podman runc mmdebstrap uidmap prometheus)
need=()
for pkg in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
((${#need[@]})) || exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system: no apt-get here; missing: ${need[*]} (their tests will skip)" >&2
    exit 0
fi
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo_cmd=(sudo -n)
    else
        echo "install-system: not root; missing: ${need[*]} (their tests will skip)" >&2
        exit 0
    fi
fi
"${sudo_cmd[@]}" apt-get update -qq || echo "install-system: apt-get update failed" >&2
if ! DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null; then
    echo "install-system: could not install some of: ${need[*]} (their tests will skip)" >&2
fi
exit 0
