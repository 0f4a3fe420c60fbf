#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test when it is missing.
set -euo pipefail
command -v chromium >/dev/null && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing Debian's chromium for the browser test" >&2
$sudo apt-get install -y -q chromium >/dev/null || {
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q chromium >/dev/null
}
command -v chromium >/dev/null || { echo "chromium did not install: apt-get install chromium" >&2; exit 1; }
