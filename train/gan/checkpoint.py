"""GAN checkpoints: one ``checkpoint-<step>.pt`` per save, written atomically, and a ``latest``
pointer file beside them naming the newest one (both written with ``albumcover.files``).

A checkpoint is a plain dict (loadable with ``torch.load(weights_only=True)``): ``format``,
``config`` (GanConfig as a dict), ``vocab`` (token list or None), ``generator``,
``discriminator``, ``opt_g``, ``opt_d``, ``scaler_g``, ``scaler_d``, ``step``, ``seed``, ``rng``
(global and noise-generator states) and ``args`` (the training flags, for the record).
"""

from __future__ import annotations

from pathlib import Path

import torch

from albumcover.files import atomic_open, write_atomic

FORMAT = "albumcover-gan/1"
LATEST = "latest"
REQUIRED = ("config", "generator", "step")


class CheckpointError(ValueError):
    """A checkpoint path or file that cannot be used; the message names it."""


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step}.pt"


def save_checkpoint(state: dict, output_dir: str | Path) -> Path:
    """Write ``state`` (which must hold ``step``) as ``output_dir/checkpoint-<step>.pt`` and
    point ``output_dir/latest`` at it. Returns the checkpoint path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / checkpoint_name(state["step"])
    # The checkpoint lands whole under its name before `latest` moves to it, so a kill at any
    # point leaves `latest` naming a complete checkpoint (albumcover.files: temp + os.replace).
    with atomic_open(path) as f:
        torch.save({"format": FORMAT, **state}, f)
    write_atomic(output_dir / LATEST, path.name + "\n")
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint file meant by ``path``: a ``.pt`` file, a ``latest`` pointer file, or a
    training output folder (its ``latest``)."""
    path = Path(path)
    if path.is_dir():
        if not (path / LATEST).is_file():
            raise CheckpointError(f"no {LATEST!r} file in {path}: not a GAN training output folder")
        path = path / LATEST
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.name == LATEST:
        name = path.read_text(encoding="utf-8").strip()
        target = path.parent / name
        if not name or not target.is_file():
            raise CheckpointError(f"{path} points to a missing checkpoint {target}")
        return target
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint (see ``resolve_checkpoint`` for what ``path`` may be) onto the CPU."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, pickle/zip errors, EOFError...
        raise CheckpointError(f"cannot read GAN checkpoint {path}: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an albumcover GAN checkpoint ({FORMAT})")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}")
    state["path"] = str(path)
    return state
