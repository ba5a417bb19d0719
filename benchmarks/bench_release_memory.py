"""Peak memory of one release request, by the size of the cover it is given.

    .venv/bin/python -m benchmarks.bench_release_memory

Each case runs in a fresh Python process (so its peak is its own) and prints the peak resident
memory above the process's baseline after imports: the app's /export path (the one decoder,
then ``export_cover`` lettered at 3000 or 6000 px) on a cover at the pixel budget (6000 x 6000,
noise: the worst case for PNG and JPEG), and a 144-megapixel PNG (12000 x 12000) through plain
PIL (``Image.open`` + ``convert``, what the app did before the budget) against the one decoder
(refused from its header). ``space.memory.PEAK_IMAGE_REQUEST_MB`` and ``IMAGE_SLOTS`` come from
the first rows.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import describe

CASE = r"""
import resource, sys, time
from PIL import Image
from albumcover.images import ImageError, read_image
from albumcover.release.export import ExportSettings, export_cover

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

kind, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = peak_mb()
start = time.perf_counter()
if kind == "decoder+export":
    image = read_image(path)
    export_cover(image, "Night Drive", "Ana", settings=ExportSettings(size=size, max_bytes=10**9))
elif kind == "plain PIL":
    Image.MAX_IMAGE_PIXELS = None  # as a server that raised PIL's limit would
    with Image.open(path) as image:
        image.convert("RGB")
else:
    try:
        read_image(path)
    except ImageError:
        pass
print(f"{peak_mb() - base:.0f} {time.perf_counter() - start:.2f} {base:.0f}")
"""


MAKE = r"""
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 256, (6000, 6000, 3), dtype=np.uint8)).save(
    sys.argv[1] + "/budget.png", compress_level=1
)
Image.new("RGB", (12000, 12000), (30, 60, 90)).save(sys.argv[1] + "/huge.png")
"""


def make_files(folder: Path) -> tuple[Path, Path]:
    """The two covers, written by another process: Linux keeps a process's peak RSS across
    fork and exec, so a parent that held them would set every case's baseline."""
    subprocess.run([sys.executable, "-c", MAKE, str(folder)], check=True)
    return folder / "budget.png", folder / "huge.png"


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        noise, huge = make_files(Path(folder))
        print(f"{describe()}\n")
        print("| case | cover | peak MB above baseline | seconds |")
        print("| --- | --- | ---: | ---: |")
        cases = [
            ("decoder+export", noise, 3000, "6000 x 6000 noise PNG, export 3000 px"),
            ("decoder+export", noise, 6000, "6000 x 6000 noise PNG, export 6000 px"),
            ("plain PIL", huge, 0, "12000 x 12000 PNG (144 MP), plain PIL"),
            ("decoder", huge, 0, "12000 x 12000 PNG (144 MP), the one decoder"),
        ]
        for kind, path, size, said in cases:
            done = subprocess.run(
                [sys.executable, "-c", CASE, kind, str(path), str(size)],
                capture_output=True,
                text=True,
                check=True,
            )
            peak, seconds, _ = done.stdout.split()
            print(f"| {kind} | {said} | {peak} | {seconds} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
