# Sourced by the other scripts: make .venv (once) and install a requirements file into it (once
# per version of that file). Usage: source tools/venv.sh requirements.txt
set -euo pipefail
requirements="$1"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "The series needs Python 3.10 or newer; $python is $("$python" --version 2>&1)." >&2
    echo "Install a newer Python, or name one: PYTHON=python3.12 bash $0" >&2
    exit 1
  }
  echo "Creating the virtual environment .venv with $("$python" --version 2>&1)"
  "$python" -m venv .venv
fi
stamp=".venv/installed-$(basename "$requirements")"
wanted=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "Installing $requirements into .venv (the first time takes a few minutes)"
  .venv/bin/python -m pip install --disable-pip-version-check -q -r "$requirements"
  echo "$wanted" > "$stamp"
fi
