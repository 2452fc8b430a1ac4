#!/usr/bin/env bash
# Every lesson as it runs in Colab: a venv on Python 3.13 with Colab's packages (.venv-colab, made
# once from tools/requirements-colab.txt), in which tools/colab_check.py runs each lesson alone and
# moves every slider. Extra arguments go to colab_check.py (e.g. 01 04); --setup only makes the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
pins=tools/requirements-colab.txt
wanted=$(sha256sum < "$pins" | cut -d' ' -f1)
if [ "$(cat .venv-colab/installed 2>/dev/null)" != "$wanted" ]; then
  python=""
  for candidate in ${COLAB_PYTHON:-} python3.13 "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      python="$candidate" && break
    fi
  done
  if [ -z "$python" ]; then
    echo "Colab runs Python 3.13: install it, or name it with COLAB_PYTHON=/path/to/python3.13" >&2
    exit 1
  fi
  echo "Creating .venv-colab with $("$python" --version) and Colab's packages ($pins)"
  start=$SECONDS
  rm -rf .venv-colab
  "$python" -m venv .venv-colab
  .venv-colab/bin/python -m pip install --disable-pip-version-check -q --progress-bar off -r "$pins" \
    > .venv-colab/pip.log 2>&1 || { cat .venv-colab/pip.log; exit 1; }
  echo "$wanted" > .venv-colab/installed
  echo ".venv-colab took $((SECONDS - start)) s to set up"
fi
[ "${1:-}" = --setup ] && exit 0
echo "requirements.txt in Colab: installing it must install nothing"
.venv-colab/bin/python -m pip install --disable-pip-version-check --dry-run --no-index -q -r requirements.txt
exec .venv-colab/bin/python tools/colab_check.py "$@"
