"""Training checkpoints: ``output_dir/checkpoint-<step>`` folders, saved atomically, found, pruned.

A checkpoint holds what ``accelerator.save_state`` writes (model or LoRA weights, optimizer, LR
scheduler, EMA, RNG states) plus :data:`STATE_FILE`, written last, whose presence marks it
complete. A run killed mid-save leaves only a hidden ``.tmp-`` folder, removed on the next start.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from albumcover.files import write_atomic

from .family import TrainingError

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "training_state.json"  # written last into a checkpoint: its presence marks it complete


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``output_dir`` as (step, path), oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.iterdir():
        match = CHECKPOINT_RE.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def find_latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step (numerically: 10 is newer than 9), or None."""
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1][1] if checkpoints else None


def resolve_checkpoint(value: str, output_dir: str | Path) -> Path | None:
    """``latest`` -> the newest checkpoint or None; a path or a name in ``output_dir`` -> it.

    Raises:
        ValueError: the named checkpoint does not exist or is incomplete.
    """
    if value == "latest":
        return find_latest_checkpoint(output_dir)
    path = Path(value)
    if not path.is_dir() and not path.is_absolute():
        path = Path(output_dir) / value
    if not path.is_dir():
        raise ValueError(
            f"--resume_from_checkpoint {value}: no such checkpoint folder "
            f"(looked in . and {output_dir})"
        )
    if not (path / STATE_FILE).is_file():
        raise ValueError(
            f"--resume_from_checkpoint {value}: {path} has no {STATE_FILE}; it is "
            "not a complete checkpoint of this script"
        )
    return path


def read_checkpoint_state(path: Path) -> dict:
    """The :data:`STATE_FILE` of checkpoint ``path`` (step, seed, base model, settings)."""
    try:
        return json.loads((path / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"cannot read {path / STATE_FILE}: {e}") from e


def save_checkpoint(accelerator, output_dir: Path, step: int, state: dict, limit: int | None):
    """Save the full training state to ``output_dir/checkpoint-<step>`` atomically, then prune
    to the newest ``limit`` checkpoints (None: keep all). Returns the checkpoint's path.

    The state goes to a hidden temp folder first; :data:`STATE_FILE` is written last and the
    folder renamed, so a run killed mid-save leaves the previous checkpoints as they were. (A
    folder, not a file: ``albumcover.files`` writes files, so this one rename of a complete temp
    folder is the folder-level counterpart of its temp + ``os.replace``.)
    """
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f".tmp-checkpoint-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    accelerator.save_state(str(tmp))
    write_atomic(tmp / STATE_FILE, json.dumps(state, indent=2))
    if final.exists():  # an older run reached the same step: swap, never leave neither
        old = output_dir / f".tmp-old-checkpoint-{step}"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    logger.info("saved checkpoint %s", final)
    if limit is not None:
        for _, path in list_checkpoints(output_dir)[:-limit]:
            shutil.rmtree(path)
            logger.info("removed old checkpoint %s (--checkpoints_total_limit %d)", path, limit)
    return final


def remove_stale_temp(output_dir: Path) -> None:
    """Delete half-written checkpoints left by a killed run."""
    for path in Path(output_dir).glob(".tmp-*checkpoint-*"):
        shutil.rmtree(path, ignore_errors=True)
