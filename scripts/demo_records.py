"""Writes demo records (JSONL) with clinical metadata and 48-bit codes.

Standard library only. Codes are clustered by grade (a stand-in for what the
ASH encoder produces until images are ingested), so that image similarity
and grade agree; reports are built from grade-typical findings.

usage: python3 scripts/demo_records.py N OUT.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from datetime import date, timedelta

BITS = 48
FINDINGS = {
    0: ["no diabetic retinopathy", "normal fundus", "clear media, healthy disc"],
    1: ["a few microaneurysms", "isolated microaneurysms temporal to the fovea"],
    2: ["dot blot haemorrhages and hard exudates", "hard exudates near the macula, microaneurysms"],
    3: ["haemorrhages in all four quadrants", "venous beading and intraretinal haemorrhages"],
    4: ["neovascularisation at the disc", "new vessels elsewhere, vitreous haemorrhage"],
}


def main() -> int:
    n, out = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(2026)
    centres = {g: [rng.getrandbits(BITS) for _ in range(3)] for g in FINDINGS}
    start = date(2022, 1, 1)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            grade = rng.choices(range(5), weights=[40, 20, 20, 12, 8])[0]
            code = rng.choice(centres[grade])
            for bit in range(BITS):
                if rng.random() < 0.07:
                    code ^= 1 << bit
            record = {
                "id": f"case-{i:05d}",
                "code": f"{code:012x}",
                "patient_id": f"P{rng.randrange(n // 3 + 1):04d}",
                "eye": rng.choice(["OD", "OS"]),
                "modality": "fundus",
                "grade": grade,
                "report": rng.choice(FINDINGS[grade]),
                "acquired": (start + timedelta(days=rng.randrange(1400))).isoformat(),
            }
            f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
