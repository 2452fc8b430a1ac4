#!/usr/bin/env bash
# Set up the series (once) and open it in JupyterLab, at the first lesson.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/venv.sh requirements-lab.txt
options=()
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(uname)" != Darwin ]; then
  options+=(--no-browser)  # no screen: open the URL that JupyterLab prints below
fi
[ "$(id -u)" = 0 ] && options+=(--allow-root)
exec .venv/bin/jupyter lab "${options[@]}" "$@" notebooks/01_sigmoid_saturation.ipynb
