"""`make bench`: ingesting from a PACS beside ingesting the same files.

One run. BENCH_PACS_IMAGES distinct synthetic 512 x 512 fundus photographs
(default 300) as JPEG-in-DICOM (dcmtk's img2dcm) are stored in an Orthanc
with its DICOMweb plugin started on loopback, then indexed by the release
binary (the shipped ash-synfundus-48) into fresh indexes:
  * `ingest --images DIR` over the same DICOM files (the reference);
  * `ingest --dicomweb URL` with 1 and 4 retrievals at once;
  * the same `--dicomweb` command again with everything indexed (a night
    with nothing new: the listing and the skip check alone).
Prints images/s and each ratio to the folder ingest.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugin"))
from ash.synthetic import dataset, fundus  # noqa: E402

BIN = ROOT / "target" / "release" / "ash-search"
MODEL = ROOT / "plugin" / "models" / "ash-synfundus-48"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def start_orthanc(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = {
        "Name": "ash-bench",
        "StorageDirectory": str(tmp / "storage"),
        "IndexDirectory": str(tmp / "storage"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "DicomServerEnabled": False,
        "AuthenticationEnabled": False,
        "Plugins": [PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (tmp / "orthanc.json").write_text(json.dumps(config))
    log = open(tmp / "orthanc.log", "wb")
    orthanc = subprocess.Popen(["/usr/sbin/Orthanc", str(tmp / "orthanc.json")], stdout=log, stderr=log)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/system", timeout=1)
            return orthanc, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("Orthanc did not start: see " + str(tmp / "orthanc.log"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest(tmp: Path, name: str, source: list[str], index: Path | None = None) -> float:
    if index is None:
        index = tmp / f"index-{name}"
        config = json.loads((ROOT / "schemas/examples/index.json").read_text())
        config["hash"]["encoder"] = str(MODEL)
        (tmp / "config.json").write_text(json.dumps(config))
        subprocess.run(
            [str(BIN), "init", str(index), "--schema", str(tmp / "config.json")], check=True, capture_output=True
        )
    cmd = [str(BIN), "ingest", str(index), *source, "--quiet", "--threads", "2"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, RAYON_NUM_THREADS="2"))
    return time.perf_counter() - started


def main() -> None:
    for tool in ("/usr/sbin/Orthanc", PLUGIN):
        if not Path(tool).exists():
            raise SystemExit(
                f"{tool} is missing: scripts/ensure_dicom_tools.sh (apt-get install orthanc orthanc-dicomweb)"
            )
    n = int(os.environ.get("BENCH_PACS_IMAGES", "300"))
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores; {n} images 512 x 512, JPEG in DICOM")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        files = tmp / "dicom"
        files.mkdir()
        for i, (grade, scene) in enumerate(dataset(n, seed=13, size=512)):
            jpeg = tmp / f"img-{i:04d}.jpg"
            fundus(grade, scene, size=512).save(jpeg, quality=90)
            subprocess.run(
                ["img2dcm", "-vlp", str(jpeg), str(files / f"img-{i:04d}.dcm")], check=True, capture_output=True
            )
        orthanc, port = start_orthanc(tmp)
        try:
            for f in sorted(files.iterdir()):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/instances", data=f.read_bytes(), method="POST"
                )
                urllib.request.urlopen(request, timeout=30).read()
            url = f"http://127.0.0.1:{port}/dicom-web"
            ingest(tmp, "warm", ["--images", str(files)])
            folder = ingest(tmp, "folder", ["--images", str(files)])
            rows = [("folder of the same DICOM files (`--images`)", folder, 0.0)]
            for threads in (1, 4):
                before = cpu_seconds(orthanc.pid)
                source = ["--dicomweb", url, "--save", str(tmp / f"save-{threads}"), "--fetch-threads", str(threads)]
                seconds = ingest(tmp, f"pacs-{threads}", source)
                server_cpu = cpu_seconds(orthanc.pid) - before
                rows.append((f"`--dicomweb`, {threads} retrieval(s) at once", seconds, server_cpu))
            again = ingest(tmp, "", ["--dicomweb", url, "--save", str(tmp / "save-4")], index=tmp / "index-pacs-4")
        finally:
            orthanc.terminate()
            orthanc.wait()
        shutil.rmtree(tmp / "storage", ignore_errors=True)
    reference = rows[0][1]
    print("| source | images/s | vs the folder | Orthanc CPU ms per image (same cores) |")
    print("|---|---|---|---|")
    for label, seconds, server_cpu in rows:
        print(f"| {label} | {n / seconds:,.0f} | {reference / seconds:.2f}x | {1000 * server_cpu / n:.2f} |")
    label = f"the same `--dicomweb` again, nothing new ({n} skipped)"
    print(f"| {label} | {n / again:,.0f} instances/s listed | {again:.2f} s | |")


if __name__ == "__main__":
    main()
