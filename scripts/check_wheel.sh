#!/usr/bin/env bash
# The built wheel in a fresh venv: `pip install` it (with ONNX Runtime, its
# `encoder` extra) and run the README's Python example from the checkout's
# root, where the example's model and photographs are.
# usage: scripts/check_wheel.sh   (after `make wheel`)
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=(target/wheels/ash_search-*.whl)
[ -f "${wheels[0]}" ] || { echo "no wheel in target/wheels: run make wheel" >&2; exit 1; }
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${wheels[0]}[encoder]"
# The example is the README's block between the python-example markers.
awk '/<!-- python-example -->/{on=1; next} /<!-- \/python-example -->/{on=0} on' README.md \
  | sed -e 's/^  //' -e '/^```/d' > "$venv/example.py"
[ -s "$venv/example.py" ] || { echo "README.md has no python-example block" >&2; exit 1; }
env -u ORT_DYLIB_PATH "$venv/bin/python" "$venv/example.py"
echo "the wheel installs into a fresh venv and runs the README's example"
