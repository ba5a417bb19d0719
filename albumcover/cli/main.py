"""Command line: ``python -m albumcover SUBCOMMAND ...``.

Each subcommand is one ``add_<name>_parser`` function that registers its arguments and one
``run_<name>(args) -> int`` that does the work (:mod:`.tag`, :mod:`.cover`, :mod:`.release`,
:mod:`.kit`);
``main`` dispatches.  Exit status: 0 on success, 1 when some input failed (each failure named on
stderr, the rest still processed), 2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import logging

from . import PROG
from .cover import add_cover_parser
from .kit import add_kit_parser
from .release import add_check_parser
from .tag import add_tag_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Album cover art from a song: Musicnn tags -> Stable Diffusion."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_tag_parser(subparsers)
    add_cover_parser(subparsers)
    add_check_parser(subparsers)
    add_kit_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"{PROG}: %(levelname)s: %(message)s",
    )
    return args.func(args)
