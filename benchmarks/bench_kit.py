"""Release kit speed per item, for a 3-minute song: the art-track video, the Spotify Canvas and
the social images, each beside an alternative in the same run.

    .venv/bin/python -m benchmarks.bench_kit              # --runs 3 --seconds 180

Targets (issue 21, 2 cores): an art track of a 3-minute song under 20 s, a Canvas under 10 s,
the social images under 1 s. Each figure is the median of ``--runs`` runs after a warm-up (the
first Canvas of a process, whose beat tracker compiles with numba, is timed on its own): wall
seconds, this process's CPU seconds and ffmpeg's (the child processes'). The song is the shared
30 s clip looped to ``--seconds``.

Alternatives: the art track at 6 fps instead of 2, and the usual ffmpeg recipe for a still
(``-loop 1 -i cover.png``: ffmpeg reads a picture file, which the kit avoids so no frame is
ever written to disk); the Canvas with x264's "fast" preset instead of "veryfast"; the social
images against a bare resize + JPEG save (no lettering).
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(fn):
    """(wall s, own CPU s, ffmpeg CPU s) of one call."""
    w, c, f = time.perf_counter(), time.process_time(), _children_cpu()
    fn()
    return time.perf_counter() - w, time.process_time() - c, _children_cpu() - f


def timed(fn, runs: int):
    """Medians of ``runs`` calls after one warm-up."""
    fn()
    results = [once(fn) for _ in range(runs)]
    return tuple(statistics.median(r[i] for r in results) for i in range(3))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=180.0, help="the song's length")
    args = p.parse_args(argv)

    from PIL import Image

    from albumcover.kit.canvas import render_canvas
    from albumcover.kit.motion import read_song
    from albumcover.kit.social import render_post, render_story, save_jpeg
    from albumcover.kit.video import art_track_frame, render_art_track
    from tests.covers_art import photo

    cover = photo(1024)
    tmp = Path(tempfile.mkdtemp(prefix="bench-kit-"))
    rows = []
    load = [describe()]
    try:
        song_path = tmp / "song.mp3"
        loops = int(args.seconds // 30) + 1
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(loops), "-i", str(CLIP)]
            + ["-t", str(args.seconds), "-c:a", "libmp3lame", "-b:a", "192k", str(song_path)],
            check=True,
        )
        wall, cpu, child = once(lambda: read_song(song_path))
        rows.append(
            (f"decode the {args.seconds:.0f} s mp3 for the kit (22.05 kHz mono)", wall, cpu, child)
        )
        song = read_song(song_path)

        def art(fps):
            return lambda: render_art_track(
                song, cover, tmp / "art.mp4", title="Night Drive", artist="Ana", fps=fps
            )

        rows.append(("**art track, 2 fps (the kit)**", *timed(art(2), args.runs)))
        rows.append(("  art track, 6 fps", *timed(art(6), args.runs)))
        frame_png = tmp / "frame.png"

        def still_loop():  # the usual recipe: ffmpeg loops a picture file
            art_track_frame(cover, "Night Drive", "Ana").save(frame_png)
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-framerate", "2"]
                + ["-i", str(frame_png), "-i", str(song_path), "-t", str(song.duration)]
                + ["-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage"]
                + ["-crf", "18", "-pix_fmt", "yuv420p", "-g", "20", "-c:a", "aac", "-b:a", "320k"]
                + ["-ar", "48000", "-movflags", "+faststart", str(tmp / "loop.mp4")],
                check=True,
            )

        rows.append(
            ("  alternative: ffmpeg -loop 1 -i frame.png, 2 fps", *timed(still_loop, args.runs))
        )
        load.append(describe())

        def canvas(preset):
            return lambda: render_canvas(song, cover, tmp / "canvas.mp4", preset=preset)

        rows.append(
            ("Canvas 8 s 720x1280 24 fps, first in the process (numba)", *once(canvas("veryfast")))
        )
        rows.append(
            (
                "**Canvas 8 s 720x1280 24 fps, veryfast (the kit)**",
                *timed(canvas("veryfast"), args.runs),
            )
        )
        rows.append(("  Canvas, x264 preset fast", *timed(canvas("fast"), args.runs)))
        large = lambda: render_canvas(song, cover, tmp / "big.mp4", width=1080)  # noqa: E731
        rows.append(("  Canvas 8 s 1080x1920", *timed(large, max(1, args.runs - 2))))
        load.append(describe())

        def social():
            save_jpeg(render_post(cover, "Night Drive", "Ana", "Out 1 May 2026"), tmp / "p.jpg")
            save_jpeg(render_story(cover, "Night Drive", "Ana", "Out 1 May 2026"), tmp / "s.jpg")

        def bare():
            cover.resize((1080, 1080), Image.Resampling.LANCZOS).save(tmp / "b.jpg", quality=92)

        rows.append(
            ("**post + story, lettered, with a date line (the kit)**", *timed(social, args.runs))
        )
        rows.append(("  reference: bare resize + JPEG save (one image)", *timed(bare, args.runs)))
        sizes = {
            name: (tmp / name).stat().st_size / 1e6 for name in ("art.mp4", "canvas.mp4", "big.mp4")
        }
        load.append(describe())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("machine:", load[0])
    for line in load[1:]:
        print("   then:", line)
    print(f"python {platform.python_version()}, {args.seconds:.0f} s song, median of {args.runs}\n")
    print(f"| {'step':<64} | {'wall s':>7} | {'CPU s':>6} | {'ffmpeg CPU s':>12} |")
    print(f"|{'-' * 66}|{'-' * 9}|{'-' * 8}|{'-' * 14}|")
    for name, wall, cpu, child in rows:
        print(f"| {name:<64} | {wall:7.2f} | {cpu:6.2f} | {child:12.2f} |")
    print("\nfiles: " + ", ".join(f"{name} {mb:.1f} MB" for name, mb in sizes.items()))


if __name__ == "__main__":
    main()
