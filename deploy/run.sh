#!/usr/bin/env bash
# "run": make sure everything the gateway needs is installed, then start it.
#   ./deploy/run.sh [dsgw serve arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=deploy/lib.sh
. deploy/lib.sh

ensure_venv
ensure_opa   # exports DSGW_OPA_BIN for the gateway
exec .venv/bin/dsgw serve "$@"
