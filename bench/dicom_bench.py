"""`make bench`: DICOM images/s beside the same pictures as image files.

One run, `ash-search encode` (the shipped ash-synfundus-48, 2 threads),
BENCH_DICOM_IMAGES distinct synthetic 512 x 512 fundus photographs
(default 300), four ways:
  * JPEG files (quality 90), and the same JPEG bytes wrapped in DICOM by
    dcmtk's img2dcm (JPEG baseline transfer syntax);
  * PNG files, and the same pixels as JPEG 2000 lossless DICOM (pydicom +
    pylibjpeg-openjpeg).
Prints images/s and the ratio of each DICOM set to its file twin, and
whether their codes agree.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugin"))
from ash.synthetic import dataset, fundus  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid  # noqa: E402

BIN = ROOT / "target" / "release" / "ash-search"
MODEL = ROOT / "plugin" / "models" / "ash-synfundus-48"
SUFFIXES = (("jpeg", ".jpg"), ("jpeg-dicom", "-jpeg.dcm"), ("png", ".png"), ("j2k-dicom", "-j2k.dcm"))


def j2k_dicom(pixels: np.ndarray, path: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = "OP"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    ds.save_as(path, enforce_file_format=True)


def encode(files: list[Path], tmp: Path) -> tuple[float, list[str]]:
    listing = tmp / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in files))
    cmd = [str(BIN), "encode", "--json", "--encoder", str(MODEL), "--threads", "2", "--files-from", str(listing)]
    env = dict(os.environ, RAYON_NUM_THREADS="2")
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, check=True, env=env)
    seconds = time.perf_counter() - started
    return seconds, [json.loads(line)["code"] for line in out.stdout.decode().splitlines()]


def main() -> None:
    n = int(os.environ.get("BENCH_DICOM_IMAGES", "300"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {n} images 512 x 512")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        sets: dict[str, list[Path]] = {"jpeg": [], "jpeg-dicom": [], "png": [], "j2k-dicom": []}
        for i, (grade, scene) in enumerate(dataset(n, seed=9, size=512)):
            picture = fundus(grade, scene, size=512)
            stem = tmp / f"img-{i:04d}"
            picture.save(f"{stem}.jpg", quality=90)
            picture.save(f"{stem}.png")
            subprocess.run(["img2dcm", f"{stem}.jpg", f"{stem}-jpeg.dcm"], check=True, capture_output=True)
            j2k_dicom(np.asarray(picture.convert("RGB")), Path(f"{stem}-j2k.dcm"))
            for key, suffix in (
                ("jpeg", ".jpg"),
                ("jpeg-dicom", "-jpeg.dcm"),
                ("png", ".png"),
                ("j2k-dicom", "-j2k.dcm"),
            ):
                sets[key].append(Path(f"{stem}{suffix}"))
        encode(sets["png"][:20], tmp)  # warm
        results = {key: encode(files, tmp) for key, files in sets.items()}
    print("| files | images/s | vs its twin | codes equal to the twin's |")
    print("|---|---|---|---|")
    for key, twin in (("jpeg", None), ("jpeg-dicom", "jpeg"), ("png", None), ("j2k-dicom", "png")):
        seconds, codes = results[key]
        if twin is None:
            print(f"| {key} | {n / seconds:,.0f} | 1.00x | |")
        else:
            t_seconds, t_codes = results[twin]
            same = sum(a == b for a, b in zip(codes, t_codes, strict=True))
            print(f"| {key} | {n / seconds:,.0f} | {t_seconds / seconds:.2f}x | {same} of {n} |")


if __name__ == "__main__":
    main()
