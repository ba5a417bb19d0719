"""Where a training run writes: checked before any model loads, and never over another run.

Every training entry point (SD fine-tuning, the GAN baselines) calls :func:`prepare_output_dir`
first. It proves the folder can be created and written (``albumcover.files.check_writable_dir``)
and refuses a folder that already holds another run's checkpoints or final weights, unless this
run continues one of its checkpoints (``--resume_from_checkpoint``) or ``--overwrite_output_dir``
says to replace it. Without those, nothing of the earlier run is touched.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from albumcover.files import OutputDirError, check_writable_dir

logger = logging.getLogger(__name__)

# What the project's training scripts leave in an output folder that marks a run:
# SD checkpoint folders (checkpoint-<step>/) and GAN checkpoint files (checkpoint-<step>.pt) ...
CHECKPOINT = re.compile(r"^checkpoint-\d+(\.pt)?$")
# ... the GAN's pointer to its newest checkpoint, and the final weights of an SD run.
GAN_LATEST = "latest"
FINAL_FILES = (
    "albumcover_training.json",
    "model_index.json",
    "pytorch_lora_weights.safetensors",
)

__all__ = [
    "OutputDirError",
    "RunExistsError",
    "check_output_file",
    "find_run_files",
    "prepare_output_dir",
]


class RunExistsError(OutputDirError):
    """The output folder holds another run; the message says how to continue or replace it."""


def find_run_files(output_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints and final weights of an earlier run in ``output_dir``, sorted by name
    ([] when the folder is missing or holds none; hidden temp files do not count)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    return sorted(
        p
        for p in output_dir.iterdir()
        if CHECKPOINT.match(p.name) or p.name == GAN_LATEST or p.name in FINAL_FILES
    )


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().parent == folder.resolve()


def _pipeline_folders(output_dir: Path) -> list[Path]:
    """The component folders (unet/, vae/, ...) a diffusers ``model_index.json`` names."""
    try:
        index = json.loads((output_dir / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(index, dict):
        return []
    names = [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list)]
    return [output_dir / n for n in names if (output_dir / n).is_dir()]


def _remove_run(output_dir: Path, found: list[Path]) -> list[Path]:
    # Only what marks a run (see find_run_files) and a pipeline's own component folders: a
    # mixed folder (old full pipeline + new LoRA) would load as the wrong model.
    doomed = _pipeline_folders(output_dir) + found
    for path in doomed:
        # tolerant of a second process removing the same files (multi-GPU launches)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return doomed


def prepare_output_dir(
    output_dir: str | os.PathLike,
    *,
    resume: str | os.PathLike | None,
    overwrite: bool,
    what: str,
    flag: str = "--output_dir",
) -> Path:
    """Make ``output_dir`` ready for a run of ``what`` (e.g. ``"SD fine-tuning"``); call it
    before any model loads.

    Args:
        output_dir: the run's folder; created with its parents.
        resume: the checkpoint this run continues, already resolved (None for a fresh start,
            also when ``--resume_from_checkpoint latest`` found no checkpoint). Resuming a
            checkpoint that lies in ``output_dir`` continues that run, so it is allowed.
        overwrite: ``--overwrite_output_dir``: replace an earlier run. What marks it (its
            checkpoints, the GAN's ``latest``, the final weights and a saved pipeline's component
            folders) is removed now, so a later ``--resume_from_checkpoint latest`` can never
            pick up the old run and old and new weights never mix; other files (model card,
            sample images) stay until this run writes its own.
        what: names the run in log lines.
        flag: the command-line flag of ``output_dir``, for messages.

    Returns: ``output_dir`` resolved.

    Raises:
        OutputDirError: the folder cannot be created or written (one line, no traceback needed).
        RunExistsError: it holds another run's checkpoints or final weights and neither
            ``resume`` (from this folder) nor ``overwrite`` was given. Nothing was changed.
    """
    output_dir = Path(output_dir)
    found = find_run_files(output_dir)
    if found and resume is not None and _inside(Path(resume), output_dir):
        return check_writable_dir(output_dir, flag)
    if found and not overwrite:
        names = ", ".join(p.name for p in found[:4]) + (" ..." if len(found) > 4 else "")
        elsewhere = (
            f"resuming {resume} (from another folder) would write over it; "
            if resume is not None
            else ""
        )
        raise RunExistsError(
            f"{flag} {output_dir} already holds another run ({names}): {elsewhere}"
            "continue it with --resume_from_checkpoint latest, replace it with "
            f"--overwrite_output_dir, or choose another {flag}"
        )
    path = check_writable_dir(output_dir, flag)
    if found:
        removed = _remove_run(output_dir, found)
        logger.warning(
            "--overwrite_output_dir: %s replaces the run in %s (removed %s)",
            what,
            output_dir,
            ", ".join(p.name for p in removed),
        )
    return path


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """Prove the file ``path`` can be written (its folder created and writable, the path itself
    not a folder) before any work. Returns it resolved.

    Raises:
        OutputDirError: one line naming ``flag`` and the reason.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputDirError(f"{flag} {str(path)!r} is a folder, not a file")
    return check_writable_dir(path.parent, f"the folder of {flag}") / path.name
