#!/usr/bin/env bash
# The demo's PACS part: 12 of the demo's photographs wrapped as DICOM by
# dcmtk's img2dcm (VL Photographic Image, with the metadata a fundus camera
# writes), stored in an Orthanc started on loopback with its own
# configuration and storage, then ingested over DICOMweb twice: the second
# run retrieves nothing, since everything is indexed.
# usage: scripts/demo_pacs.sh BINARY PYTHON DEMO_OUTPUT
set -euo pipefail
bin=$1 py=$2 out=$3
plugin=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
if ! { [ -x /usr/sbin/Orthanc ] && [ -f $plugin ] && command -v img2dcm >/dev/null; }; then
  echo "-- skipped: Orthanc, its DICOMweb plugin or dcmtk is missing" \
    "(apt-get install orthanc orthanc-dicomweb dcmtk, or scripts/ensure_dicom_tools.sh)"
  exit 0
fi
pacs=$(realpath "$out")/pacs
mkdir -p "$pacs/dicom" "$pacs/storage"
# img2dcm reads JPEG, so the photographs go through JPEG first.
"$py" -c '
import json, sys
from pathlib import Path
from PIL import Image
data, pacs = Path(sys.argv[1]), Path(sys.argv[2])
lines = (data / "records.jsonl").read_text().splitlines()
with open(pacs / "cases.tsv", "w") as out:
    for r in (json.loads(line) for line in lines[:12]):
        jpeg = pacs / (r["id"] + ".jpg")
        Image.open(data / r["image"]).convert("RGB").save(jpeg, quality=95)
        eye = {"OD": "R", "OS": "L"}.get(r.get("eye"), "R")
        rid = r["id"]
        out.write(f"{jpeg}\t{rid}\t{eye}\n")
' "$out/data" "$pacs"
while IFS=$'\t' read -r jpeg id eye; do
  img2dcm -vlp -k "PatientID=$id" -k "StudyDate=20260314" -k "ImageLaterality=$eye" \
    -k "Modality=OP" -k "StudyDescription=diabetic retinopathy screening" "$jpeg" "$pacs/dicom/$id.dcm"
done <"$pacs/cases.tsv"
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$pacs/orthanc.json" <<EOF
{"Name": "ash-demo", "StorageDirectory": "$pacs/storage", "IndexDirectory": "$pacs/storage",
 "HttpPort": $port, "RemoteAccessAllowed": false, "DicomServerEnabled": false,
 "AuthenticationEnabled": false, "Plugins": ["$plugin"],
 "DicomWeb": {"Enable": true, "Root": "/dicom-web/"}}
EOF
/usr/sbin/Orthanc "$pacs/orthanc.json" >"$pacs/orthanc.log" 2>&1 &
orthanc=$!
trap 'kill $orthanc 2>/dev/null && wait $orthanc 2>/dev/null; true' EXIT
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/system" >/dev/null && break; sleep 0.2; done
for f in "$pacs"/dicom/*.dcm; do
  curl -sf -X POST --data-binary @"$f" "http://127.0.0.1:$port/instances" >/dev/null
done
url=http://127.0.0.1:$port/dicom-web
echo "-- Orthanc at $url holds $(ls "$pacs/dicom" | wc -l) instances"
$bin init "$pacs/index" --schema schemas/examples/index.json
$bin ingest "$pacs/index" --dicomweb "$url" --save "$pacs/retrieved" --quiet
echo "-- the same command again, as every night: nothing new, nothing retrieved"
$bin ingest "$pacs/index" --dicomweb "$url" --save "$pacs/retrieved" --quiet
echo "-- like the first photograph, right eyes (OD) only; the fields come from the DICOM headers"
$bin search "$pacs/index" --image "$(head -1 "$pacs/cases.tsv" | cut -f1)" --filter 'eye:OD' -k 3
