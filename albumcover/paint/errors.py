"""The painter's one error type, in a module of its own so every paint module can raise it."""

from __future__ import annotations


class GeneratorError(RuntimeError):
    """The model could not be loaded, or ran out of memory while painting."""
