#!/usr/bin/env bash
# Installs Debian's dcmtk (img2dcm, dcmcjpeg, dcmdump) when it is missing:
# the DICOM tests make their files with it (tests/dicom/make_dicom.py).
set -euo pipefail
command -v img2dcm >/dev/null && command -v dcmcjpeg >/dev/null && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing Debian's dcmtk for the DICOM tests" >&2
$sudo apt-get install -y -q dcmtk >/dev/null || {
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q dcmtk >/dev/null
}
command -v img2dcm >/dev/null || { echo "dcmtk did not install: apt-get install dcmtk" >&2; exit 1; }
