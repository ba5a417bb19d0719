"""argparse ``type`` functions shared by every command line of the project: each turns a flag's
text into a checked value or raises ``argparse.ArgumentTypeError``, which argparse reports with
the flag's name (exit status 2)."""

from __future__ import annotations

import argparse
import math


def int_in(minimum: int, maximum: int | None = None, multiple: int = 1):
    """An argparse ``type``: the flag's text as an integer in [minimum, maximum] (no upper bound
    when None), a multiple of ``multiple``. argparse names the flag in the message."""
    rule = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
    rule += f", a multiple of {multiple}" if multiple > 1 else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not an integer ({rule}): {text!r}") from e
        if value < minimum or (maximum is not None and value > maximum) or value % multiple:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


def float_in(minimum: float, maximum: float):
    """An argparse ``type``: a finite number in [minimum, maximum] (no NaN, no infinity)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be a number from {minimum:g} to {maximum:g}, got {text!r}"
            )
        return value

    return parse


def choice(choices):
    """An argparse ``type`` for a text flag with fixed values; "" (the default) is allowed."""

    def parse(text: str) -> str:
        if text and text not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(choices)}, got {text!r}")
        return text

    return parse
