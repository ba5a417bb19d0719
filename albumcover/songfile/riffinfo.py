"""The RIFF ``LIST/INFO`` tags of a WAV file: what DAWs, ffmpeg and Windows write into WAVs.

mutagen reads only a WAV's ID3 chunk, but most WAVs a musician exports carry their title and
artist in ``INFO`` subchunks (``INAM``, ``IART``, ...) instead, or as well.
"""

from __future__ import annotations

import struct
from pathlib import Path

# INFO subchunk -> SongTags field (IPRT is "part", which ffmpeg and others use for the track)
INFO_FIELDS = {
    "INAM": "title",
    "IART": "artist",
    "IPRD": "album",
    "ICRD": "date",
    "IGNR": "genre",
    "IPRT": "track",
    "ITRK": "track",
}


def read_riff_info(path: str | Path) -> dict[str, str]:
    """The file's ``INFO`` subchunks as {chunk id: text}, e.g. ``{"INAM": "Night Drive"}``.

    The format names no text encoding; values are decoded as UTF-8 (ASCII included), and bytes
    that are not valid UTF-8 become U+FFFD, which :func:`albumcover.songfile.tagtext.clean_tag_text`
    drops with a note rather than guess a code page. {} for a file that is not RIFF/WAVE or has
    no INFO list; a truncated chunk ends the walk.
    """
    found: dict[str, str] = {}
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return found
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return found
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name != b"LIST":
                f.seek(size + (size & 1), 1)
                continue
            body = f.read(size)
            if body[:4] == b"INFO":
                found.update(_subchunks(body[4:]))
            if size & 1:
                f.seek(1, 1)


def _subchunks(data: bytes) -> dict[str, str]:
    values, pos = {}, 0
    while pos + 8 <= len(data):
        name, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        raw = data[pos + 8 : pos + 8 + size].split(b"\x00", 1)[0]
        if name.isalnum():
            values[name.decode("ascii")] = raw.decode("utf-8", errors="replace")
        pos += 8 + size + (size & 1)
    return values
