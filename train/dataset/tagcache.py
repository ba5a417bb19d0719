"""The builder's tag cache: tagger outputs per audio file, replayed when a rebuild captions it.

Entries live in ``OUTPUT_DIR/.cache/tags`` and hold while the file's path, size and mtime do.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from albumcover.ear.tagger import TagResult
from albumcover.files import write_atomic

logger = logging.getLogger(__name__)


class TagCache:
    """Tagger outputs per audio file (``.npz`` in ``folder``), valid while size and mtime hold."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def get(self, audio: Path, model: str):
        """The :class:`~albumcover.ear.tagger.TagResult` recorded for this file under ``model`` (a
        name :meth:`put` used), or None."""

        stored = self._load(audio)
        if stored is None or f"{model}.scores" not in stored:
            return None
        labels = [str(label) for label in stored[f"{model}.labels"]]
        scores = dict(zip(labels, stored[f"{model}.scores"].tolist(), strict=True))
        stored_model = stored.get(f"{model}.model")
        return TagResult(
            model=model if stored_model is None else str(stored_model),
            labels=labels,
            taggram=stored[f"{model}.taggram"],
            scores=scores,
            tags=_top_labels(scores, 3),
            features=None,
        )

    def put(self, audio: Path, results: Mapping) -> None:
        """Record tag results for this file, ``{name: TagResult}`` (any number; the name is the
        model's, or says which patches it heard), keeping other names' results."""
        identity = _identity(audio)
        arrays = dict(self._load(audio) or {})
        for name, result in results.items():
            arrays[f"{name}.model"] = np.asarray(result.model)
            arrays[f"{name}.labels"] = np.asarray(result.labels, dtype=str)
            arrays[f"{name}.scores"] = np.asarray(
                [result.scores[label] for label in result.labels], dtype=np.float64
            )
            arrays[f"{name}.taggram"] = np.asarray(result.taggram, dtype=np.float32)
        arrays["identity"] = np.asarray(json.dumps(identity, sort_keys=True))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(self._file(audio), buffer.getvalue())

    def _file(self, audio: Path) -> Path:
        digest = hashlib.sha1(str(Path(audio).resolve()).encode()).hexdigest()[:24]
        return self.folder / f"{digest}.npz"

    def _load(self, audio: Path) -> dict[str, np.ndarray] | None:
        path = self._file(audio)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
            if json.loads(str(arrays["identity"])) != _identity(audio):
                return None  # the file changed since it was tagged
        except (OSError, ValueError, KeyError) as e:
            logger.warning("ignoring an unreadable cache entry %s: %s", path, e)
            return None
        return arrays


class _ReplayTagger:
    """Stands in for a Tagger on a cache hit: answers with the result recorded for the file.

    describe_song then builds the prompt from the recorded scores exactly as from fresh ones.
    """

    def __init__(self, result):
        self.result = result
        self.model_name = result.model
        self.labels = result.labels

    def tag(self, audio, *, top: int = 3, **kwargs):
        return replace(self.result, tags=_top_labels(self.result.scores, top))

    def tag_patches(self, patches, *, top: int = 3, **kwargs):
        return self.tag(patches, top=top)


def _identity(audio: Path) -> dict:
    stat = Path(audio).stat()
    return {"path": str(Path(audio).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _top_labels(scores: dict[str, float], top: int) -> list[str]:
    return sorted(scores, key=lambda label: -scores[label])[:top]
