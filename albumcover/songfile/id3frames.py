"""The ID3 text frames mutagen cannot decode, found by walking the tag as written.

mutagen skips a frame whose text is not valid in the encoding the frame declares (UTF-8 frames
holding latin-1 bytes, odd-length UTF-16): it is silently missing from what it reads, and from
what it saves. :func:`undecodable_frames` finds them, so a reader can say a value was dropped and
a writer can refuse to lose it.
"""

from __future__ import annotations

import struct
from pathlib import Path

_ENCODINGS = {0: "latin-1", 1: "utf-16", 2: "utf-16-be", 3: "utf-8"}
_HEADER = 10


def _syncsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def _id3_tag(path: Path) -> bytes | None:
    """The ID3v2 tag bytes (header included) at the start of an MP3 or in a WAV ``id3`` chunk."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:3] == b"ID3":
            f.seek(0)
            header = f.read(_HEADER)
            return header + f.read(_syncsafe(header[6:10])) if len(header) == _HEADER else None
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name in (b"id3 ", b"ID3 "):
                return f.read(size)
            f.seek(size + (size & 1), 1)


def _text_ok(frame_id: str, body: bytes) -> bool:
    if not body or body[0] not in _ENCODINGS:
        return True  # not text mutagen would decode this way: not ours to judge
    text = body[1:]
    if frame_id in ("COMM", "USLT"):
        text = text[3:]  # the language code
    codec = _ENCODINGS[body[0]]
    if codec.startswith("utf-16"):
        text = text.rstrip(b"\x00")
        text += b"\x00" * (len(text) % 2)  # a NUL eaten from the last UTF-16 unit
    try:
        text.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def undecodable_frames(path: str | Path) -> list[str]:
    """IDs of the text (``T***``), comment and lyrics frames of the file's ID3v2.3/2.4 tag whose
    text fails to decode in the frame's declared encoding, in tag order; [] when the file has no
    such tag, or one this walk cannot read (unsynchronised, compressed or encrypted frames)."""
    tag = _id3_tag(Path(path))
    if tag is None or len(tag) < _HEADER or tag[3] not in (3, 4) or tag[5] & 0x80:
        return []
    version, end, pos = tag[3], len(tag), _HEADER
    if tag[5] & 0x40:  # extended header
        if len(tag) < _HEADER + 4:
            return []
        size = _syncsafe(tag[10:14]) if version == 4 else struct.unpack(">I", tag[10:14])[0] + 4
        pos += size
    bad = []
    while pos + _HEADER <= end:
        frame_id = tag[pos : pos + 4]
        if not frame_id.isalnum():  # padding
            break
        raw_size = tag[pos + 4 : pos + 8]
        size = _syncsafe(raw_size) if version == 4 else struct.unpack(">I", raw_size)[0]
        flags = tag[pos + 8 : pos + 10]
        body = tag[pos + _HEADER : pos + _HEADER + size]
        name = frame_id.decode("ascii")
        # format flags (compression, encryption, unsynchronisation, data length): skip the frame
        text_frame = name[0] == "T" or name in ("COMM", "USLT")
        if text_frame and not flags[1] and not _text_ok(name, body):
            bad.append(name)
        pos += _HEADER + size
    return bad
