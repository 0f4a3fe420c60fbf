"""Makes a PACS's worth of small Ophthalmic Photography objects for the
DICOMweb tests, each with its own synthetic fundus picture.

    make_series.py OUT COUNT [FIRST]

Objects FIRST .. FIRST+COUNT-1 (FIRST defaults to 0) go to
OUT/op-NNNN.dcm: explicit VR little endian, 8-bit RGB, 96 x 96 pixels (the project's
synthetic fundus photographs),
five instances per study. Even-numbered studies are dated 2025-06-10, odd
ones 2026-03-14; the eye alternates R and L; the patient's name is set (it
must never be indexed). Every third object is JPEG 2000 lossless, so the
server also hands out compressed objects. With FIRST 0, OUT/report.dcm is
an Encapsulated PDF of the first study (a PACS holds documents too; it has
no pixel data), and OUT/stereo.dcm a two-frame object of pictures 1 and
2 (a stereo pair). OUT/manifest-FIRST.json lists each picture with the values
the test expects.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugin"))
from ash.synthetic import fundus

OP_8BIT = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
ROOT = "1.2.826.0.1.3680043.10.1377"  # this project's test UIDs
SIDE = 96


def picture(n: int) -> np.ndarray:
    """The project's synthetic fundus photograph, grade and seed from `n`."""
    return np.asarray(fundus(n % 5, 7_000 + n, size=SIDE).convert("RGB"))


def instance(n: int) -> tuple[Dataset, dict[str, object]]:
    study = n // 5
    date = "20250610" if study % 2 == 0 else "20260314"
    laterality = "R" if n % 2 == 0 else "L"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = OP_8BIT
    ds.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}.3.{n + 1}"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = OP_8BIT
    ds.SOPInstanceUID = f"{ROOT}.3.{n + 1}"
    ds.StudyInstanceUID = f"{ROOT}.1.{study + 1}"
    ds.SeriesInstanceUID = f"{ROOT}.2.{study + 1}"
    ds.PatientID = f"P-{study:04d}"
    ds.PatientName = "Doe^Jane"
    ds.PatientBirthDate = "19500101"
    ds.StudyDate = date
    ds.StudyTime = "101500"
    ds.Modality = "OP"
    ds.Manufacturer = "Acme Ophthalmics"
    ds.StudyDescription = "diabetic retinopathy screening"
    ds.ImageLaterality = laterality
    ds.InstanceNumber = n % 5 + 1
    pixels = picture(n)
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    if n % 3 == 2:
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    expect = {
        "uid": str(ds.SOPInstanceUID),
        "study": str(ds.StudyInstanceUID),
        "patient": str(ds.PatientID),
        "date": f"{date[:4]}-{date[4:6]}-{date[6:]}",
        "eye": "OD" if laterality == "R" else "OS",
    }
    return ds, expect


def main() -> int:
    out, count = Path(sys.argv[1]), int(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, object]] = {}
    for n in range(first, first + count):
        ds, expect = instance(n)
        name = f"op-{n:04d}.dcm"
        ds.save_as(out / name, enforce_file_format=True)
        manifest[name] = expect
    if first == 0:
        pdf, _ = instance(0)
        del pdf.PixelData
        for keyword in [
            "Rows",
            "Columns",
            "SamplesPerPixel",
            "PhotometricInterpretation",
            "PlanarConfiguration",
            "BitsAllocated",
            "BitsStored",
            "HighBit",
            "PixelRepresentation",
        ]:
            delattr(pdf, keyword)
        pdf.SOPClassUID = pdf.file_meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
        pdf.SOPInstanceUID = pdf.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}.4.1"
        pdf.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        pdf.Modality = "DOC"
        pdf.MIMETypeOfEncapsulatedDocument = "application/pdf"
        pdf.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
        pdf.save_as(out / "report.dcm", enforce_file_format=True)
        stereo, _ = instance(1)
        stereo.SOPInstanceUID = stereo.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}.5.1"
        stereo.NumberOfFrames = 2
        stereo.PixelData = np.stack([picture(1), picture(2)]).tobytes()
        stereo.save_as(out / "stereo.dcm", enforce_file_format=True)
    (out / f"manifest-{first}.json").write_text(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
