"""Makes the DICOM test files from real pictures, with real DICOM tools.

    make_dicom.py OUT PICTURE.png [JPEG.jpg]

From an 8-bit RGB PNG: Ophthalmic Photography objects in explicit and
implicit VR little endian, RLE lossless and JPEG 2000 lossless (pydicom,
pylibjpeg-openjpeg), JPEG lossless (dcmtk's dcmcjpeg), YBR_FULL, a
three-frame object (its second and third frames also as frame-2.png and
frame-3.png), a 16-bit monochrome Secondary Capture with a window;
from a JPEG file, JPEG baseline in DICOM with dcmtk's img2dcm; and broken
ones: no pixel data (Encapsulated PDF), JPEG-LS (a transfer syntax this
build does not decode), a truncated JPEG 2000 object, a JPEG lossless
object whose frame does not start as a JPEG, and one whose header claims
60,000 x 60,000 pixels. `manifest.json` lists each file with the
header values the test expects.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

OP_8BIT = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


def base(sop_class: str, uid: str, laterality: str, patient: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient
    ds.PatientName = "Doe^Jane"
    ds.PatientBirthDate = "19500101"
    ds.StudyDate = "20260314"
    ds.StudyTime = "101500"
    ds.Modality = "OP"
    ds.Manufacturer = "Acme Ophthalmics"
    ds.ManufacturerModelName = "FundusCam 3"
    ds.StudyDescription = "diabetic retinopathy screening, exudates"
    ds.ImageLaterality = laterality
    ds.InstanceNumber = 1
    return ds


def rgb(ds: Dataset, pixels: np.ndarray, photometric: str = "RGB") -> Dataset:
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = photometric
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def to_ybr_full(pixels: np.ndarray) -> np.ndarray:
    r, g, b = (pixels[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return np.clip(np.rint(np.stack([y, cb, cr], -1)), 0, 255).astype(np.uint8)


def save(ds: Dataset, path: Path, implicit: bool = False) -> None:
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


def main() -> int:
    out, picture = Path(sys.argv[1]), Path(sys.argv[2])
    jpeg = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    out.mkdir(parents=True, exist_ok=True)
    pixels = np.asarray(Image.open(picture).convert("RGB"))
    files: dict[str, dict[str, object]] = {}

    def record(name: str, ds: Dataset, **expect: object) -> None:
        files[name] = {"uid": str(ds.SOPInstanceUID), "patient": str(ds.PatientID), **expect}

    ds = rgb(base(OP_8BIT, generate_uid(), "R", "P-001"), pixels)
    save(ds, out / "rgb-explicit.dcm")
    record("rgb-explicit.dcm", ds, same_as_png=True, eye="OD")

    ds = rgb(base(OP_8BIT, generate_uid(), "L", "P-002"), pixels)
    save(ds, out / "rgb-implicit.dcm", implicit=True)
    record("rgb-implicit.dcm", ds, same_as_png=True, eye="OS")

    ds = rgb(base(OP_8BIT, generate_uid(), "R", "P-003"), pixels)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    save(ds, out / "rgb-rle.dcm")
    record("rgb-rle.dcm", ds, same_as_png=True, eye="OD")

    ds = rgb(base(OP_8BIT, generate_uid(), "R", "P-004"), pixels)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    save(ds, out / "rgb-j2k.dcm")
    record("rgb-j2k.dcm", ds, same_as_png=True, eye="OD")

    def jpeg_lossless(ds: Dataset, name: str) -> None:
        save(ds, out / "tmp.dcm")
        subprocess.run(["dcmcjpeg", "+e1", "+un", out / "tmp.dcm", out / name], check=True)
        (out / "tmp.dcm").unlink()

    ds = rgb(base(OP_8BIT, generate_uid(), "L", "P-005"), pixels)
    jpeg_lossless(ds, "rgb-jpeg-lossless.dcm")
    record("rgb-jpeg-lossless.dcm", ds, same_as_png=True, eye="OS")

    ds = rgb(base(OP_8BIT, generate_uid(), "R", "P-006"), to_ybr_full(pixels), "YBR_FULL")
    save(ds, out / "ybr-full.dcm")
    record("ybr-full.dcm", ds, same_as_png=False, eye="OD")

    frames = np.stack([pixels, pixels[::-1], pixels[:, ::-1]])
    for n in (2, 3):  # the other frames as PNG, for their codes and pixels
        Image.fromarray(frames[n - 1]).save(out / f"frame-{n}.png")
    ds = rgb(base(OP_8BIT, generate_uid(), "R", "P-007"), pixels)
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    save(ds, out / "multiframe.dcm")
    record("multiframe.dcm", ds, same_as_png=True, eye="OD", frames=3)

    grey = (pixels.astype(np.uint32).sum(-1) * 16).astype(np.uint16)  # 0..12240 in 16 bits
    ds = base(SECONDARY_CAPTURE, generate_uid(), "L", "P-008")
    ds.Modality = "OT"
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.WindowCenter, ds.WindowWidth = 6000, 12000
    ds.PixelData = grey.tobytes()
    save(ds, out / "mono16.dcm")
    record("mono16.dcm", ds, same_as_png=False, eye="OS")

    if jpeg is not None:
        subprocess.run(
            ["img2dcm", "--dataset-from", out / "rgb-explicit.dcm", "-k", "PatientID=P-009",
             "-k", f"SOPInstanceUID={generate_uid()}", jpeg, out / "jpeg-baseline.dcm"],
            check=True,
        )  # fmt: skip
        meta = subprocess.run(
            ["dcmdump", "+P", "SOPInstanceUID", out / "jpeg-baseline.dcm"], capture_output=True, check=True
        )
        uid = meta.stdout.decode().split("[", 1)[1].split("]", 1)[0]
        files["jpeg-baseline.dcm"] = {"uid": uid, "patient": "P-009", "same_as_png": False, "eye": "OD"}

    pdf = base(ENCAPSULATED_PDF, generate_uid(), "R", "P-010")
    pdf.Modality = "DOC"
    pdf.MIMETypeOfEncapsulatedDocument = "application/pdf"
    pdf.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    save(pdf, out / "bad-no-pixels.dcm")

    ls = rgb(base(OP_8BIT, generate_uid(), "R", "P-011"), pixels)
    ls.file_meta.TransferSyntaxUID = JPEGLSLossless
    ls.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 64 + b"\xff\xd9"])
    ls["PixelData"].VR = "OB"
    save(ls, out / "bad-jpeg-ls.dcm")

    ds = rgb(base(OP_8BIT, generate_uid(), "R", "P-012"), pixels)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    save(ds, out / "bad-truncated.dcm")
    j2k = (out / "bad-truncated.dcm").read_bytes()
    (out / "bad-truncated.dcm").write_bytes(j2k[: len(j2k) * 2 // 3])

    jpeg_lossless(rgb(base(OP_8BIT, generate_uid(), "R", "P-013"), pixels), "bad-corrupt-frame.dcm")
    lossless = bytearray((out / "bad-corrupt-frame.dcm").read_bytes())
    start = lossless.index(b"\xff\xd8\xff")  # the frame's JPEG start and its first marker overwritten
    lossless[start : start + 4] = b"\x00\x00\x00\x00"
    (out / "bad-corrupt-frame.dcm").write_bytes(bytes(lossless))

    # A header that claims 60,000 x 60,000 pixels (3.6 gigapixels, a 10 GB
    # frame) over 48 bytes of pixel data: a decompression bomb in DICOM.
    bomb = rgb(base(OP_8BIT, generate_uid(), "R", "P-014"), pixels[:4, :4])
    bomb.Rows = bomb.Columns = 60_000
    save(bomb, out / "bad-huge.dcm")

    (out / "manifest.json").write_text(json.dumps(files, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
