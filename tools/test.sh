#!/usr/bin/env bash
# Set up the series with its test tools (once) and run every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/venv.sh requirements-test.txt
exec .venv/bin/python -m pytest "$@"
