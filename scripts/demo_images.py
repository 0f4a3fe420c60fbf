"""Writes the demo's clinical image set: synthetic fundus photographs of
every grade (the plugin's generator, ash.synthetic) with metadata, plus
the CC0 photograph ../shared/data/fundus/retina.jpg, and query images that
are not in the set.

usage: python scripts/demo_images.py N OUT_DIR [SIZE]

OUT_DIR/images/*.png, OUT_DIR/records.jsonl (image paths relative to it),
OUT_DIR/queries/grade{0..4}.png (new scenes, not indexed) and
OUT_DIR/queries/revisit-case-00003.png (case-00003's eye photographed again
at a later visit). SIZE is the photographs' side in pixels (default 192).
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugin"))
from ash.synthetic import dataset, eye_of, fundus

FINDINGS = {
    0: ["no diabetic retinopathy", "normal fundus", "clear media, healthy disc"],
    1: ["a few microaneurysms", "isolated microaneurysms temporal to the fovea"],
    2: ["dot blot haemorrhages and hard exudates", "hard exudates near the macula, microaneurysms"],
    3: ["haemorrhages in all four quadrants", "venous beading, haemorrhages and exudates"],
    4: ["neovascularisation at the disc", "new vessels elsewhere, vitreous haemorrhage"],
}
REPO = Path(__file__).resolve().parent.parent
# The CC0 photograph beside the checkout, else its committed thumbnail.
RETINA = next(
    p
    for p in (REPO.parent / "shared/data/fundus/retina.jpg", REPO / "tests/fixtures/ingest/images/retina.jpg")
    if p.exists()
)


def main() -> int:
    n, out = int(sys.argv[1]), Path(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 192
    images, queries = out / "images", out / "queries"
    images.mkdir(parents=True, exist_ok=True)
    queries.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    start = date(2022, 1, 1)
    with open(out / "records.jsonl", "w", encoding="utf-8") as f:
        cases = dataset(n, seed=7)
        for i, (grade, scene) in enumerate(cases):
            name = f"case-{i:05d}.png"
            fundus(grade, scene, size=size).save(images / name)
            record = {
                "id": f"case-{i:05d}",
                "image": f"images/{name}",
                "patient_id": f"P{scene % (n // 2 + 1):04d}",
                "eye": eye_of(scene),
                "modality": "fundus",
                "grade": grade,
                "report": rng.choice(FINDINGS[grade]),
                "acquired": (start + timedelta(days=rng.randrange(1400))).isoformat(),
            }
            f.write(json.dumps(record) + "\n")
        shutil.copy(RETINA, images / "retina.jpg")
        record = {
            "id": "retina-cc0",
            "image": "images/retina.jpg",
            "patient_id": "P9999",
            "eye": "OD",
            "modality": "fundus",
            "grade": 0,
            "report": "healthy retina (CC0 photograph)",
            "acquired": "2024-06-01",
        }
        f.write(json.dumps(record) + "\n")
    for grade in range(5):
        fundus(grade, 10_000 + grade, size=size).save(queries / f"grade{grade}.png")
    if n > 3:
        grade, scene = cases[3]
        fundus(grade, scene, size=size, visit=1).save(queries / "revisit-case-00003.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
