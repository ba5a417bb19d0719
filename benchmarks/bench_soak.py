"""Memory under sustained load: rounds of concurrent users against the real app, RSS after each.

    .venv/bin/python -m benchmarks.bench_soak                       # 6 rounds of 20 users
    .venv/bin/python -m benchmarks.bench_soak --rounds 10 --users 20 --steps 1

Starts ``python app.py`` on 127.0.0.1 (a free port; nothing else is contacted) with a tiny
random image model, then runs ``--rounds`` rounds; in each, ``--users`` threads at once each
connect a fresh gradio_client (a new session, as a new visitor is), upload the song to /analyze
and paint one cover with /generate from the prompt it got. After each round, once the server is
idle, it prints the server's resident memory (RSS, from /proc), its CPU time, the files in
gradio's cache folder and the growth over the previous round. The song is the shared 30 s test
clip. Every round has a deadline (``--round-timeout``); the run is bounded by ``--rounds``.

``--env NAME=VALUE`` (repeatable) adds to the server's environment (any ``ALBUMCOVER_*``
setting, for instance). ``--map`` also prints, each round, the server's RSS by kind of mapping
(main heap, anonymous mappings by size, files): allocator state as opposed to live growth.
A SIGTERM (``timeout``, ``kill``) stops the server too, not only this script.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--users", type=int, default=20, help="concurrent clients per round")
    p.add_argument("--steps", type=int, default=2, help="denoising steps per cover")
    p.add_argument("--round-timeout", type=float, default=900.0, help="seconds per round")
    p.add_argument("--song", type=Path, default=CLIP)
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--map", action="store_true", help="also print the RSS by kind of mapping each round"
    )
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= 50 or not 1 <= args.users <= 64 or not 1 <= args.steps <= 50:
        p.error("--rounds must be in [1, 50], --users in [1, 64], --steps in [1, 50]")
    if not args.song.is_file():
        p.error(f"--song {args.song} is not a file")
    if any("=" not in e for e in args.env):
        p.error("--env wants NAME=VALUE")
    return args


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def settle(pid: int, quiet_s: float = 3.0, limit_s: float = 60.0) -> None:
    """Wait until the server has used no CPU for ``quiet_s`` (its post-request work and the
    app's idle-time memory release done), so each round's RSS is read in the same state."""
    deadline = time.monotonic() + limit_s
    last = cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = cpu_s(pid)
        if now - last < 0.05:
            return
        last = now


def memory_map(pid: int) -> str:
    """The server's RSS by kind of mapping, in MB (from /proc/PID/smaps): the main heap, anonymous
    mappings by size (thread stacks are ~8 MB, glibc's thread arenas are 64 MB reservations,
    torch's and numpy's big buffers are their own mappings), and file-backed pages."""
    kinds: dict[str, float] = {}
    name, size = "", 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                size = hi - lo
                path = head[5] if len(head) > 5 else ""
                if path.startswith("["):
                    name = path
                elif path:
                    name = "files"
                elif size >= 60 * 2**20:
                    name = "anon>=60M"
                elif size >= 7 * 2**20:
                    name = "anon7-60M"
                else:
                    name = "anon<7M"
            elif head[0] == "Rss:":
                kinds[name] = kinds.get(name, 0.0) + int(head[1]) / 1024
    return " ".join(f"{k} {v:.0f}" for k, v in sorted(kinds.items()) if v >= 1)


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder)) if folder.is_dir() else 0


def user(url: str, song: Path, steps: int, downloads: Path, errors: list) -> None:
    from gradio_client import Client, handle_file

    try:
        client = Client(url, verbose=False, download_files=downloads)
        _, prompt, _, _ = client.predict(
            handle_file(song), "Night Drive", "Ana", "2024", api_name="/analyze"
        )
        gallery = client.predict(prompt, steps=steps, num_images=1, api_name="/generate")
        if len(gallery) != 1:
            raise RuntimeError(f"expected one cover, got {len(gallery)}")
    except Exception as e:  # counted and shown per round; the soak goes on
        errors.append(f"{type(e).__name__}: {e}")


def _stop_on_sigterm() -> None:
    # SystemExit unwinds through AppServer's context manager, which stops the app; without it a
    # killed soak leaves its server running
    import signal

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main(args) -> int:
    _stop_on_sigterm()
    from tests.app_server import AppServer
    from tests.tiny_models import IMAGE_SIZE, save_tiny_sd

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = save_tiny_sd(tmp / "sd")
        env = dict(e.split("=", 1) for e in args.env)
        (tmp / "server").mkdir()
        with AppServer(
            tmp / "server",
            ALBUMCOVER_MODEL=str(model),
            ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
            ALBUMCOVER_QUEUE_SIZE=str(max(16, 2 * args.users)),
            **env,
        ) as server:
            url = server.wait()
            pid = server.process.pid
            cache = tmp / "server" / "gradio"
            print(
                f"app.py pid {pid} on {url}; {args.users} users per round, each /analyze "
                f"({args.song.name}) + /generate ({IMAGE_SIZE}x{IMAGE_SIZE}, {args.steps} steps); "
                f"server env {env or 'as the app sets it'}",
                flush=True,
            )
            print(f"{describe()}\n")
            print("| round | wall s | server CPU s | RSS MB | growth | threads | cache files |")
            print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            before = rss_mb(pid)
            print(
                f"| start | | {cpu_s(pid):.1f} | {before:.0f} | | {threads(pid)} | "
                f"{count_files(cache)} |",
                flush=True,
            )
            failed = 0
            for round_no in range(1, args.rounds + 1):
                errors: list[str] = []
                start, cpu0 = time.perf_counter(), cpu_s(pid)
                workers = [
                    threading.Thread(
                        target=user,
                        args=(url, args.song, args.steps, tmp / "downloads", errors),
                        daemon=True,
                    )
                    for _ in range(args.users)
                ]
                for w in workers:
                    w.start()
                deadline = start + args.round_timeout
                for w in workers:
                    w.join(max(0.0, deadline - time.perf_counter()))
                late = sum(w.is_alive() for w in workers)
                wall, cpu = time.perf_counter() - start, cpu_s(pid) - cpu0
                settle(pid)
                now = rss_mb(pid)
                growth = 100 * (now / before - 1)
                before = now
                print(
                    f"| {round_no} | {wall:.0f} | {cpu:.1f} | {now:.0f} | {growth:+.1f} % | "
                    f"{threads(pid)} | {count_files(cache)} |",
                    flush=True,
                )
                if args.map:
                    print(f"    map MB: {memory_map(pid)}", flush=True)
                for e in errors[:3]:
                    print(f"    error: {e[:200]}", flush=True)
                failed += len(errors) + late
                if late:
                    print(f"    {late} users still waiting at the round's deadline; stopping")
                    break
            print(f"\n{failed} failed requests")
            return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
