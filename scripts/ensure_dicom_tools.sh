#!/usr/bin/env bash
# Installs the Debian packages the DICOM tests start when they are missing:
# dcmtk (img2dcm, dcmcjpeg, dcmdump: tests/dicom/make_dicom.py makes test
# files with them) and Orthanc with its DICOMweb plugin (tests/it/dicomweb.rs
# starts one on loopback as the PACS).
set -euo pipefail
plugin=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
have() {
  command -v img2dcm >/dev/null && command -v dcmcjpeg >/dev/null &&
    [ -x /usr/sbin/Orthanc ] && [ -f "$plugin" ]
}
have && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
packages="dcmtk orthanc orthanc-dicomweb"
echo "installing Debian's $packages for the DICOM tests" >&2
# Orthanc's package starts a system service; the tests never use it.
$sudo apt-get install -y -q $packages >/dev/null || {
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q $packages >/dev/null
}
have || { echo "the DICOM tools did not install: apt-get install $packages" >&2; exit 1; }
