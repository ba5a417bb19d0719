"""What a dataset build reports: the rows and images it wrote, and each track it left out and why.

:func:`train.dataset.build.build_dataset` and :func:`train.dataset.shards.merge_shards` return a
:class:`BuildSummary`; its :meth:`~BuildSummary.format` is the closing summary the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "validation")

# Skip reasons, as the closing summary groups them.
NO_COVER = "no cover"
BAD_COVER = "unreadable cover"
TINY_COVER = "tiny cover"
BAD_AUDIO = "unreadable audio"
NO_TAGS = "no tags"
BAD_ROW = "bad manifest row"


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str
    detail: str = ""


@dataclass
class BuildSummary:
    """What a build wrote and what it left out."""

    output_dir: Path
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    images: int = 0
    tagged: int = 0  # tracks run through a tagger this time
    cached: int = 0  # tracks whose tagger outputs came from the cache
    written: int = 0  # files created or changed in the output folder
    skipped: list[Skipped] = field(default_factory=list)
    # (source, note): tag text repaired or dropped before captioning (albumcover.songfile.tagtext)
    tag_notes: list[tuple[str, str]] = field(default_factory=list)
    # (source, note): covers taken although under train.dataset.covers.MIN_COVER_PX (asked for)
    cover_notes: list[tuple[str, str]] = field(default_factory=list)
    shard: str = ""  # "i of K" for one shard of a --num_shards build (its rows are not split)
    unsplit: int = 0  # a shard's rows, split when the shards are merged (train.dataset.shards)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values()) + self.unsplit

    def format(self) -> str:
        """A few lines for the terminal: counts, then every skipped file and why."""
        lines = [
            f"Dataset in {self.output_dir}: {self.total_rows} tracks "
            f"(train {self.rows['train']}, validation {self.rows['validation']}), "
            f"{self.images} cover images; {self.written} files written.",
            f"Tagged {self.tagged} tracks, {self.cached} more from the cache.",
        ]
        if self.shard:
            lines[0] = (
                f"Shard {self.shard} in {self.output_dir}: {self.unsplit} tracks (split when "
                f"merged), {self.images} cover images; {self.written} files written."
            )
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)}:")
            for s in sorted(self.skipped, key=lambda s: (s.reason, s.source)):
                lines.append(f"  {s.reason}: {s.source}" + (f" ({s.detail})" if s.detail else ""))
        if self.tag_notes:
            lines.append(f"Tag text repaired or dropped ({len(self.tag_notes)}):")
            lines += [f"  {source}: {note}" for source, note in sorted(self.tag_notes)]
        if self.cover_notes:
            lines.append(f"Tiny covers taken ({len(self.cover_notes)}):")
            lines += [f"  {source}: {note}" for source, note in sorted(self.cover_notes)]
        return "\n".join(lines)
