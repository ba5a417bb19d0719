"""Release speed per cover: lettering at 3000 px, the whole CPU export (upscale + letter +
JPEG), the distributor check, and embedding into a song; each against a bare-Pillow reference
in the same run (what the same step costs without fitting, contrast, colour management).

    .venv/bin/python -m benchmarks.bench_export                  # CPU
    .venv/bin/python -m benchmarks.bench_export --upscaler MODEL # + the diffusers x4 on a GPU

Targets (issue 8): lettering under 0.3 s, the whole CPU export under 1 s. Each figure is the
median of ``--runs`` runs after a warm-up, wall and CPU seconds (on a shared machine wall time
is noisy; CPU time is what the work costs). The first call, which reads the font files and
their cmaps, is timed separately.
"""

from __future__ import annotations

import argparse
import io
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"


def timed(fn, runs: int):
    """(median wall s, median CPU s, result) over ``runs`` calls after one warm-up."""
    result = fn()
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), result


def painting(size: int = 512):
    from tests.covers_art import photo

    return photo(size)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size", type=int, default=3000)
    p.add_argument("--upscaler", default=None, help="diffusers x4 upscaler (needs a GPU)")
    args = p.parse_args(argv)

    from PIL import Image, ImageDraw, ImageFont

    from albumcover.release import fonts
    from albumcover.release.check import check_cover
    from albumcover.release.export import ExportSettings, LanczosUpscaler, export_cover
    from albumcover.release.lettering import letter_cover
    from albumcover.songfile.embed import embed_cover

    source = painting()
    settings = ExportSettings(size=args.size)
    big = LanczosUpscaler()(source, args.size)
    rows = []

    w, c = time.perf_counter(), time.process_time()
    letter_cover(big, "Night Drive", "Ana")
    rows.append(
        ("lettering, first call (reads fonts)", time.perf_counter() - w, time.process_time() - c)
    )
    for layout in ("auto", "top"):
        wall, cpu, _ = timed(
            lambda layout=layout: letter_cover(big, "Night Drive", "Ana", layout=layout), args.runs
        )
        rows.append((f"lettering at {args.size} px, layout={layout}", wall, cpu))
    wall, cpu, _ = timed(lambda: letter_cover(big, "ليلة القيادة", "夜のドライブ"), args.runs)
    rows.append((f"lettering at {args.size} px, Arabic + CJK", wall, cpu))

    def app_preview():  # what the app's Letter button does: 1024-px preview, no repainting
        preview = source.resize((1024, 1024), Image.Resampling.LANCZOS)
        return letter_cover(preview, "Night Drive", "Ana", layout="top")

    wall, cpu, _ = timed(app_preview, args.runs)
    rows.append(("app preview: 512 -> 1024 px + lettering", wall, cpu))

    font_path = str(fonts.face_file("sans").path)

    def bare_draw():
        image = big.copy()
        font = ImageFont.truetype(font_path, round(0.1 * args.size))
        ImageDraw.Draw(image).text((180, 180), "Night Drive", font=font, fill="white")
        return image

    wall, cpu, _ = timed(bare_draw, args.runs)
    rows.append(("  reference: bare draw.text (no fit/contrast)", wall, cpu))

    wall, cpu, _ = timed(lambda: LanczosUpscaler()(source, args.size), args.runs)
    rows.append(("upscale 512 -> 3000, Lanczos + unsharp", wall, cpu))
    wall, cpu, export = timed(
        lambda: export_cover(source, "Night Drive", "Ana", settings=settings), args.runs
    )
    rows.append(("whole CPU export (upscale + letter + JPEG)", wall, cpu))

    def bare_export():
        buffer = io.BytesIO()
        source.resize((args.size, args.size), Image.Resampling.LANCZOS).save(
            buffer, "JPEG", quality=95
        )
        return buffer.getvalue()

    wall, cpu, _ = timed(bare_export, args.runs)
    rows.append(("  reference: bare resize + JPEG save", wall, cpu))

    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        cover = export.save(tmp / "cover.jpg")
        wall, cpu, _ = timed(lambda: check_cover(cover), args.runs)
        rows.append(("distributor check (3000 px JPEG)", wall, cpu))
        songs = {}
        if CLIP.exists() and shutil.which("ffmpeg"):
            for ext in ("mp3", "flac"):
                songs[ext] = tmp / f"song.{ext}"
                subprocess.run(
                    [
                        "ffmpeg",
                        "-loglevel",
                        "error",
                        "-y",
                        "-t",
                        "30",
                        "-i",
                        str(CLIP),
                        str(songs[ext]),
                    ],
                    check=True,
                )
        for ext, song in songs.items():
            out = tmp / f"out.{ext}"
            wall, cpu, _ = timed(
                lambda song=song, out=out: embed_cover(song, cover, out), args.runs
            )
            rows.append(
                (f"embed into a 30 s {ext} ({len(export.data) / 1e6:.1f} MB cover)", wall, cpu)
            )
            wall, cpu, _ = timed(lambda song=song, out=out: shutil.copyfile(song, out), args.runs)
            rows.append(("  reference: plain file copy", wall, cpu))
        if args.upscaler:
            from albumcover.release.export import DiffusionUpscaler

            upscaler = DiffusionUpscaler.from_pretrained(args.upscaler)
            wall, cpu, result = timed(
                lambda: export_cover(
                    source, "Night Drive", "Ana", settings=settings, upscaler=upscaler
                ),
                1,
            )
            rows.append((f"export with {result.upscaler}", wall, cpu))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"machine: {describe()}")
    print(
        f"python {platform.python_version()}, export {args.size} px, median of {args.runs} runs\n"
    )
    print(f"| {'step':<52} | {'wall s':>7} | {'CPU s':>7} |")
    print(f"|{'-' * 54}|{'-' * 9}|{'-' * 9}|")
    for name, wall, cpu in rows:
        print(f"| {name:<52} | {wall:7.3f} | {cpu:7.3f} |")
    size_mb = len(export.data) / 1e6
    print(f"\nexport: {size_mb:.2f} MB JPEG, quality {export.quality}, {export.upscaler}")


if __name__ == "__main__":
    main()
