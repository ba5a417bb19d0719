"""The release endpoints under sustained load: memory and disk after each round of visitors.

    .venv/bin/python -m benchmarks.bench_release_soak                  # 8 rounds of 6 users
    .venv/bin/python -m benchmarks.bench_release_soak --rounds 12 --users 8 --size 3000

Starts ``python app.py`` on 127.0.0.1 with a tiny random image model (nothing else is
contacted; ``TMPDIR`` points into a fresh folder), then runs ``--rounds`` rounds; in each,
``--users`` threads at once each connect a fresh gradio_client and call /letter, /export
(``--size`` px JPEG, lettered) and /embed (the shared 30 s clip with that export) on a 1024-px
cover. After each round, once the server is idle, it prints the server's resident memory (RSS),
its CPU time, the files in gradio's cache and the files under TMPDIR outside that cache (which
must stay where they started: nothing per request is kept there). After the last round the
server is stopped and the files still in its cache counted (gradio deletes the files it
registered at shutdown; anything left is a file nothing would ever sweep).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.bench_soak import CLIP, _stop_on_sigterm, count_files, cpu_s, rss_mb
from benchmarks.machine import describe


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--users", type=int, default=6, help="concurrent clients per round")
    p.add_argument("--size", type=int, default=1400, help="export size in pixels")
    p.add_argument("--round-timeout", type=float, default=900.0, help="seconds per round")
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= 50 or not 1 <= args.users <= 64:
        p.error("--rounds must be in [1, 50], --users in [1, 64]")
    if not 640 <= args.size <= 6000:
        p.error("--size must be in [640, 6000]")
    return args


def files_outside(folder: Path, cache: Path) -> dict[str, int]:
    """Every file under ``folder`` but not under ``cache``: relative path -> bytes."""
    found = {}
    for root, _, names in os.walk(folder):
        if Path(root).is_relative_to(cache):
            continue
        for name in names:
            path = Path(root) / name
            try:
                found[str(path.relative_to(folder))] = path.stat().st_size
            except FileNotFoundError:  # removed while we walked: not kept
                continue
    return found


def make_cover(path: Path, size: int = 1024) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, size)
    art = np.stack([np.outer(x, 1 - x) * 4, np.outer(1 - x, x) * 4, np.outer(x, x)], -1) * 255
    art[size // 2 :, size // 2 :] = rng.integers(0, 256, (size - size // 2, size - size // 2, 3))
    Image.fromarray(art.clip(0, 255).astype(np.uint8)).save(path)
    return path


def connect(url: str, downloads: Path):
    """A fresh gradio_client (a new session, as a new visitor is)."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=downloads)


def user(client, cover: Path, song: Path, size: int, errors: list) -> None:
    from gradio_client import handle_file

    try:
        client.predict(handle_file(cover), "Night Drive", "Ana", api_name="/letter")
        exported, _ = client.predict(
            handle_file(cover), "Night Drive", "Ana", size=size, api_name="/export"
        )
        client.predict(handle_file(song), handle_file(exported), api_name="/embed")
    except Exception as e:  # counted and shown per round; the soak goes on
        errors.append(f"{type(e).__name__}: {e}")


def settle(pid: int, quiet_s: float = 3.0, idle_cpu_s: float = 0.3, limit_s: float = 60.0):
    """Wait until the server used under ``idle_cpu_s`` of CPU in ``quiet_s`` (an idle app.py
    uses ~0.1 s in 3 s: torch's and gradio's own threads), so each round's RSS is read once
    its post-request work and the idle-time memory release are done."""
    deadline = time.monotonic() + limit_s
    last = cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)  # a sampling window: the condition is the CPU used in it
        now = cpu_s(pid)
        if now - last < idle_cpu_s:
            return
        last = now


def soak(server_dir: Path, url: str, pid: int, args, cover: Path, song: Path, say=print):
    """Run the rounds against a started server; returns one dict per round (and the start):
    rss_mb, cpu_s, cache_files, kept (files under TMPDIR outside the cache), errors."""
    cache = server_dir / "gradio"
    tmp = server_dir / "tmp"
    downloads = server_dir.parent / "downloads"
    start_files = files_outside(tmp, cache)
    rows = [dict(round="start", rss_mb=rss_mb(pid), cpu_s=cpu_s(pid), cache_files=0, kept=0)]
    say("| round | wall s | server CPU s | RSS MB | growth | cache files | kept in TMPDIR |")
    say("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    say(f"| start | | {rows[0]['cpu_s']:.1f} | {rows[0]['rss_mb']:.0f} | | | 0 |")
    for round_no in range(1, args.rounds + 1):
        errors: list[str] = []
        clients = [connect(url, downloads) for _ in range(args.users)]
        began, cpu0 = time.perf_counter(), cpu_s(pid)
        workers = [
            threading.Thread(target=user, args=(c, cover, song, args.size, errors), daemon=True)
            for c in clients
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(max(0.0, began + args.round_timeout - time.perf_counter()))
        wall, cpu = time.perf_counter() - began, cpu_s(pid) - cpu0
        for c in clients:
            c.close()  # its heartbeat would keep the server busy
        settle(pid)
        now = files_outside(tmp, cache)
        kept = sorted(set(now.items()) - set(start_files.items()))
        row = dict(
            round=round_no,
            rss_mb=rss_mb(pid),
            cpu_s=cpu,
            cache_files=count_files(cache),
            kept=len(kept),
            kept_names=[name for name, _ in kept],
            errors=errors + ["still running at the deadline"] * sum(w.is_alive() for w in workers),
        )
        growth = 100 * (row["rss_mb"] / rows[-1]["rss_mb"] - 1)
        rows.append(row)
        say(
            f"| {round_no} | {wall:.0f} | {cpu:.1f} | {row['rss_mb']:.0f} | {growth:+.1f} % | "
            f"{row['cache_files']} | {row['kept']} |"
        )
        for e in row["errors"][:3]:
            say(f"    error: {e[:200]}")
    return rows


def stop_cleanly(server, timeout: float = 60.0) -> int:
    """Stop the app as Ctrl-C does (gradio closes the server and deletes the cache files it
    registered; a SIGTERM ends the process before that); returns its exit status."""
    server.process.send_signal(signal.SIGINT)
    return server.process.wait(timeout)


def main(args) -> int:
    _stop_on_sigterm()
    from tests.app_server import AppServer
    from tests.tiny_models import IMAGE_SIZE, save_tiny_sd

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = save_tiny_sd(folder / "sd")
        server_dir = folder / "server"
        (server_dir / "tmp").mkdir(parents=True)
        cover = make_cover(folder / "cover.png")
        with AppServer(
            server_dir,
            ALBUMCOVER_MODEL=str(model),
            ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
            ALBUMCOVER_QUEUE_SIZE=str(max(16, 4 * args.users)),
            TMPDIR=str(server_dir / "tmp"),
        ) as server:
            url = server.wait()
            print(
                f"app.py pid {server.process.pid} on {url}; {args.users} users per round, each "
                f"/letter + /export ({args.size} px JPEG, lettered) + /embed ({CLIP.name})",
                flush=True,
            )
            print(f"{describe()}\n")
            rows = soak(server_dir, url, server.process.pid, args, cover, CLIP)
            stop_cleanly(server)
        left = count_files(server_dir / "gradio")
        print(f"\nafter shutdown: {left} files left in gradio's cache")
        failed = sum(len(r.get("errors", [])) for r in rows)
        print(f"{failed} failed requests")
        return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
