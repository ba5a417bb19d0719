"""Start-up of a fresh process: the command line's ``--help`` and the library's import.

    .venv/bin/python -m benchmarks.bench_startup --repeat 10 [--against DIR]

Times, in fresh Python processes, ``python -m albumcover --help`` (parsing every subcommand's
flags: what a user waits for before anything runs) and ``from albumcover import Tagger,
describe_song`` (what a script that tags pays). ``--against DIR`` times another checkout of the
project the same way, interleaved with this one so both see the same load: e.g. a worktree of
an older commit (``git worktree add /tmp/old REV``); its own code is imported because each
process starts in its folder. Median and best of ``--repeat`` runs, wall seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parents[1]
PROBES = {
    "albumcover --help": ["-m", "albumcover", "--help"],
    "import Tagger, describe_song": ["-c", "from albumcover import Tagger, describe_song"],
}


def run_once(folder: Path, argv: list[str]) -> float:
    """Wall seconds of one fresh ``python ARGV`` started in ``folder``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs per figure (default 10)")
    parser.add_argument("--against", type=Path, default=None, help="another checkout to compare")
    args = parser.parse_args()

    folders = {"this checkout": ROOT}
    if args.against is not None:
        folders[f"{args.against}"] = args.against.resolve()
    times = {(name, probe): [] for name in folders for probe in PROBES}
    for _ in range(args.repeat):
        for probe, argv in PROBES.items():
            for name, folder in folders.items():  # interleaved: both see the same load
                times[name, probe].append(run_once(folder, argv))
    print(f"{describe()}; median (best) of {args.repeat}, wall s\n")
    print("| checkout | " + " | ".join(PROBES) + " |")
    print("|---|" + "---|" * len(PROBES))
    for name in folders:
        cells = [
            f"{statistics.median(times[name, p]):.3f} ({min(times[name, p]):.3f})" for p in PROBES
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nafter: {describe()}")


if __name__ == "__main__":
    main()
