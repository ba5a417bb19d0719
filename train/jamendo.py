"""Collect Creative Commons tracks and their album covers from Jamendo, for the dataset builder.

    export JAMENDO_CLIENT_ID=...          # a free client id from devportal.jamendo.com
    python -m train.jamendo --output_dir data/jamendo --tags rock --limit 50
    python -m train.build_dataset --manifest data/jamendo/manifest.jsonl --output_dir data/covers

The command: its flags, the client id and the closing summary. The API client, the downloads and
the manifest are :mod:`train.dataset.jamendo`.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from albumcover.files import check_writable_dir

from .dataset.jamendo import API_URL, MANIFEST, Http, JamendoError, collect


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    """The command's flags (``sys.argv`` when None), checked before the first request: a bad one
    exits 2 with a one-line error."""
    parser = argparse.ArgumentParser(
        prog="python -m train.jamendo",
        description="Download Creative Commons tracks and album covers from Jamendo.",
    )
    parser.add_argument("--client_id", help="Jamendo API client id (default: $JAMENDO_CLIENT_ID)")
    parser.add_argument("--output_dir", type=Path, required=True, help="download folder")
    parser.add_argument("--tags", help="only tracks with this Jamendo tag, e.g. rock")
    parser.add_argument("--limit", type=int, default=50, help="tracks to have in the folder")
    parser.add_argument("--order", default="popularity_total", help="API sort order")
    parser.add_argument("--api_url", default=API_URL, help="API base URL")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=3, help="retries of a failed request")
    args = parser.parse_args(input_args)
    if args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.retries < 0:
        parser.error(f"--retries must be >= 0, got {args.retries}")
    if not args.api_url.startswith(("http://", "https://")):
        parser.error(f"--api_url must be an http(s) URL, got {args.api_url!r}")
    try:  # before the first request: one line, not a traceback after minutes of downloads
        check_writable_dir(args.output_dir, "--output_dir")
    except ValueError as e:
        parser.error(str(e))
    return args


def main(args: argparse.Namespace) -> int:
    """Download into ``args.output_dir`` and print what a build runs next; the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    client_id = args.client_id or os.environ.get("JAMENDO_CLIENT_ID", "")
    if not client_id.strip():
        print(
            "error: no Jamendo client id: pass --client_id or set JAMENDO_CLIENT_ID "
            "(register an app at https://devportal.jamendo.com)",
            file=sys.stderr,
        )
        return 2
    http = Http(timeout=args.timeout, retries=args.retries, secret=client_id)
    try:
        summary = collect(
            client_id,
            args.output_dir,
            limit=args.limit,
            tags=args.tags,
            api_url=args.api_url,
            order=args.order,
            http=http,
        )
    except JamendoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary.format())
    print(
        f"Next: python -m train.build_dataset --manifest {args.output_dir / MANIFEST} "
        "--output_dir DATASET_DIR"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
