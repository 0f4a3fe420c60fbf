"""Deterministic synthetic colour fundus photographs with DR-like grades.

How it works: every image is drawn from two independent random streams.
The *scene* stream (seeded by ``scene_seed``) fixes everything that does not
depend on the grade: left or right eye, field of view, rotation, global
illumination, colour cast, blur, and the branching vessel tree. The *lesion*
stream adds the small findings that define the grade, at random places:

* 0 — none;
* 1 — a few microaneurysms (tiny dark red dots);
* 2 — plus dot/blot haemorrhages and hard exudates (small yellow flecks);
* 3 — plus many haemorrhages in all four quadrants and venous beading;
* 4 — plus neovascularisation (fine tortuous new vessels) near the disc.

Because the scene does not depend on the grade, two images of the same scene
and different grades differ only where lesions are drawn: the grades share
the overall look and differ in small salient regions, which is exactly the
situation the ASH paper's spatial attention is meant for.

A *visit* photographs the same eye again: visit 0 is the scene as drawn;
a later visit keeps the eye's anatomy and lesions (vessel tree, disc, the
lesion stream) but redraws the acquisition (rotation, illumination, colour
cast, blur, field of view) from a third stream, so "find this eye's earlier
photograph" can be measured. :func:`lesion_mask` draws the lesions alone,
through the same geometry, so attention can be scored against where the
lesions really are. Only numpy and
Pillow are used, so the Rust demo can call this without PyTorch. The same
seeds give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

GRADES = (0, 1, 2, 3, 4)
GRADE_NAMES = {
    0: "no diabetic retinopathy",
    1: "mild non-proliferative (microaneurysms)",
    2: "moderate non-proliferative (haemorrhages, hard exudates)",
    3: "severe non-proliferative (haemorrhages in all quadrants, venous beading)",
    4: "proliferative (neovascularisation)",
}
# Supersampling factor: shapes are drawn large, then downsampled, for
# smooth edges that stay deterministic.
_SS = 2


@dataclass(frozen=True)
class Scene:
    """The grade-independent part of an image."""

    eye: str  # "OD" (right) or "OS" (left)
    fov: float  # radius of the field of view, fraction of half the size
    rotation: float  # degrees
    brightness: float
    cast: tuple[float, float, float]
    blur: float  # Gaussian radius in output pixels
    light_angle: float  # direction of the illumination gradient


def _scene(rng: np.random.Generator) -> Scene:
    return Scene(
        eye="OD" if rng.random() < 0.5 else "OS",
        fov=float(rng.uniform(0.86, 0.98)),
        rotation=float(rng.uniform(-15.0, 15.0)),
        brightness=float(rng.uniform(0.8, 1.15)),
        cast=(float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.8, 1.2))),
        blur=float(rng.uniform(0.0, 1.0)),
        light_angle=float(rng.uniform(0.0, 2 * math.pi)),
    )


def _vessels(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, disc: tuple[float, float], radius: float, side: int
) -> list[list[tuple[float, float]]]:
    """Draws a branching vessel tree from the disc; returns the main paths."""
    paths: list[list[tuple[float, float]]] = []

    def grow(x: float, y: float, angle: float, width: float, length: float, depth: int) -> None:
        path = [(x, y)]
        steps = int(length / (radius * 0.04)) + 2
        for _ in range(steps):
            angle += float(rng.normal(0.0, 0.18))
            x += math.cos(angle) * radius * 0.04
            y += math.sin(angle) * radius * 0.04
            path.append((x, y))
        shade = (110, 20, 20) if depth % 2 == 0 else (135, 35, 30)
        draw.line(path, fill=shade, width=max(1, int(width)), joint="curve")
        if depth == 0:
            paths.append(path)
        if depth < 3 and width > 2:
            for frac in (0.35, 0.7):
                bx, by = path[int(len(path) * frac)]
                turn = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.4, 0.9))
                grow(bx, by, angle + turn, width * 0.65, length * 0.55, depth + 1)

    # Four arcades leave the disc towards the macula side, up and down.
    toward_macula = math.pi if side > 0 else 0.0
    for base in (-0.9, -0.45, 0.45, 0.9):
        angle = toward_macula + base * side * -1 + float(rng.normal(0.0, 0.1))
        grow(disc[0], disc[1], angle, radius * 0.035, radius * float(rng.uniform(1.1, 1.5)), 0)
    return paths


def _random_point(
    rng: np.random.Generator, c: float, radius: float, quadrant: int | None = None
) -> tuple[float, float]:
    """A uniform point inside the field of view (optionally one quadrant)."""
    while True:
        r = radius * 0.92 * math.sqrt(float(rng.random()))
        t = (
            float(rng.uniform(0.0, 2 * math.pi))
            if quadrant is None
            else float(rng.uniform(quadrant * math.pi / 2, (quadrant + 1) * math.pi / 2))
        )
        x, y = c + r * math.cos(t), c + r * math.sin(t)
        if quadrant is not None or r > 0:
            return x, y


def _dot(draw: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: tuple[int, int, int] | int) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _paint(colour: tuple[int, int, int], mask: bool) -> tuple[int, int, int] | int:
    """A lesion's colour, or full white on a lesion mask (no random draw either way)."""
    return 255 if mask else colour


def _lesions(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    grade: int,
    c: float,
    radius: float,
    disc: tuple[float, float],
    vessel_paths: list[list[tuple[float, float]]],
    mask: bool = False,
) -> None:
    px = radius / 118.0  # one output pixel at 256 x 256, in canvas units
    if grade >= 1:
        for _ in range(int(rng.integers(3, 9))):
            _dot(draw, *_random_point(rng, c, radius), float(rng.uniform(1.0, 1.8)) * px, _paint((95, 10, 15), mask))
    if grade >= 2:
        for _ in range(int(rng.integers(5, 12))):
            _dot(draw, *_random_point(rng, c, radius), float(rng.uniform(2.0, 4.0)) * px, _paint((100, 12, 12), mask))
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = _random_point(rng, c, radius * 0.7)
            for _ in range(int(rng.integers(3, 8))):
                _dot(
                    draw,
                    cx + float(rng.normal(0, 5)) * px,
                    cy + float(rng.normal(0, 5)) * px,
                    float(rng.uniform(1.0, 2.2)) * px,
                    _paint((235, 215, 120), mask),
                )
    if grade >= 3:
        for q in range(4):
            for _ in range(int(rng.integers(6, 11))):
                _dot(
                    draw,
                    *_random_point(rng, c, radius, quadrant=q),
                    float(rng.uniform(2.0, 4.5)) * px,
                    _paint((105, 10, 10), mask),
                )
        for path in vessel_paths[:2]:
            for i in range(2, len(path) - 1, 3):
                _dot(draw, path[i][0], path[i][1], float(rng.uniform(2.2, 3.2)) * px, _paint((90, 15, 20), mask))
    if grade >= 4:
        for _ in range(int(rng.integers(2, 4))):
            x, y = disc[0] + float(rng.normal(0, 10)) * px, disc[1] + float(rng.normal(0, 10)) * px
            loop = [(x, y)]
            angle = float(rng.uniform(0, 2 * math.pi))
            for _ in range(14):
                angle += float(rng.normal(0, 0.9))
                x += math.cos(angle) * 2.5 * px
                y += math.sin(angle) * 2.5 * px
                loop.append((x, y))
            draw.line(loop, fill=_paint((150, 25, 35), mask), width=max(1, int(1.2 * px)))


def fundus(grade: int, scene_seed: int, lesion_seed: int | None = None, size: int = 256, visit: int = 0) -> Image.Image:
    """One synthetic fundus photograph of ``grade`` as an RGB image.

    ``scene_seed`` fixes the grade-independent scene; ``lesion_seed``
    (default: derived from both) places the lesions; ``visit`` > 0
    photographs the same eye again under new acquisition parameters.
    """
    return _render(grade, scene_seed, lesion_seed, size, visit, mask=False)


def lesion_mask(
    grade: int, scene_seed: int, lesion_seed: int | None = None, size: int = 256, visit: int = 0
) -> np.ndarray:
    """Where :func:`fundus` with the same arguments draws lesions: (size, size) bool.

    Grade 0 has none. The mask goes through the photograph's rotation and
    resampling but not its blur, so it marks the lesions themselves.
    """
    img = _render(grade, scene_seed, lesion_seed, size, visit, mask=True)
    return np.asarray(img) >= 128


def _revisit(scene: Scene, scene_seed: int, visit: int) -> Scene:
    """The acquisition of a later visit: same eye, new camera settings."""
    rng = np.random.default_rng([scene_seed, visit, 0x7151])
    return replace(
        scene,
        fov=float(rng.uniform(0.86, 0.98)),
        rotation=float(rng.uniform(-15.0, 15.0)),
        brightness=float(rng.uniform(0.8, 1.15)),
        cast=(float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.8, 1.2))),
        blur=float(rng.uniform(0.0, 1.0)),
        light_angle=float(rng.uniform(0.0, 2 * math.pi)),
    )


def _render(grade: int, scene_seed: int, lesion_seed: int | None, size: int, visit: int, mask: bool) -> Image.Image:
    if grade not in GRADES:
        raise ValueError(f"grade must be one of {GRADES}, got {grade}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    if visit < 0:
        raise ValueError(f"visit must be 0 or more, got {visit}")
    scene_rng = np.random.default_rng([scene_seed, 0x5CE7E])
    lesion_rng = np.random.default_rng([scene_seed if lesion_seed is None else lesion_seed, grade, 0x1E5])
    sc = _scene(scene_rng)
    if visit > 0:
        sc = _revisit(sc, scene_seed, visit)
    big = size * _SS
    c = big / 2
    radius = big / 2 * sc.fov
    side = 1 if sc.eye == "OD" else -1

    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32)
    d = np.sqrt((xx - c) ** 2 + (yy - c) ** 2) / radius
    if mask:
        # Lesions alone on black; the anatomy is drawn off-canvas only to
        # consume the same random draws (vessel paths place venous beading).
        img = Image.new("L", (big, big))
        anatomy = ImageDraw.Draw(Image.new("RGB", (big, big)))
    else:
        # Background: orange-red retina with vignetting and an illumination gradient.
        gx, gy = math.cos(sc.light_angle), math.sin(sc.light_angle)
        light = sc.brightness * (1.0 - 0.45 * d**2) * (1.0 + 0.15 * ((xx - c) * gx + (yy - c) * gy) / radius)
        base = np.stack([200 * light * sc.cast[0], 85 * light * sc.cast[1], 35 * light * sc.cast[2]], axis=-1)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        anatomy = ImageDraw.Draw(img)
    draw = ImageDraw.Draw(img)

    disc = (c + side * radius * 0.32, c + float(scene_rng.normal(0, radius * 0.03)))
    macula = (c - side * radius * 0.05, c)
    mr = radius * 0.12
    anatomy.ellipse((macula[0] - mr, macula[1] - mr, macula[0] + mr, macula[1] + mr), fill=(150, 55, 25))
    paths = _vessels(anatomy, scene_rng, disc, radius, side)
    dr = radius * 0.11
    disc_fill, cup_fill = (245, 200, 120), (252, 230, 170)
    anatomy.ellipse((disc[0] - dr * 0.9, disc[1] - dr, disc[0] + dr * 0.9, disc[1] + dr), fill=disc_fill)
    anatomy.ellipse((disc[0] - dr * 0.4, disc[1] - dr * 0.45, disc[0] + dr * 0.4, disc[1] + dr * 0.45), fill=cup_fill)

    _lesions(draw, lesion_rng, grade, c, radius, disc, paths, mask)

    img = img.rotate(sc.rotation, resample=Image.Resampling.BILINEAR, center=(c, c))
    fov = Image.fromarray(((d <= 1.0) * 255).astype(np.uint8), "L")
    img = Image.composite(img, Image.new(img.mode, (big, big)), fov)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    if sc.blur > 0.05 and not mask:
        img = img.filter(ImageFilter.GaussianBlur(sc.blur))
    return img


def eye_of(scene_seed: int) -> str:
    """The eye ("OD" or "OS") of a scene."""
    return _scene(np.random.default_rng([scene_seed, 0x5CE7E])).eye


def dataset(n: int, seed: int, size: int = 256) -> list[tuple[int, int]]:
    """``n`` (grade, scene seed) pairs, grades balanced, for :func:`fundus`."""
    rng = np.random.default_rng([seed, 0xDA7A])
    grades = np.resize(np.array(GRADES), n)
    rng.shuffle(grades)
    scenes = rng.integers(0, 2**62, size=n)
    return [(int(g), int(s)) for g, s in zip(grades, scenes, strict=True)]


def main(argv: list[str] | None = None) -> int:
    """Writes ``N`` images and ``labels.csv`` (path,label,eye) to a folder."""
    p = argparse.ArgumentParser(prog="python -m ash.synthetic", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "eye"])
        for i, (grade, scene) in enumerate(dataset(args.n, args.seed, args.size)):
            name = f"fundus-{i:05d}.png"
            fundus(grade, scene, size=args.size).save(args.out / name, optimize=False)
            w.writerow([name, grade, eye_of(scene)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
