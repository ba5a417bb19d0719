"""A small music library for the dataset tests: short clips of the shared song, tagged and given
cover art with mutagen the way taggers (Picard, iTunes, foobar2000) store it."""

import base64
import io
import shutil
import subprocess
from pathlib import Path

from PIL import Image

# ffmpeg options per extension; -map_metadata -1 and -vn drop the source's own tags and art.
CODECS = {
    ".mp3": ["-c:a", "libmp3lame"],
    ".flac": ["-c:a", "flac"],
    ".ogg": ["-c:a", "libvorbis"],
    ".opus": ["-c:a", "libopus"],
    ".m4a": ["-c:a", "aac"],
    ".wav": ["-c:a", "pcm_s16le"],
}


def cut_clip(src: Path, dst: Path, seconds: float = 4.0, start: float = 8.0) -> Path:
    """Encode ``seconds`` of ``src`` (from ``start``) into ``dst``, format from its extension."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("ffmpeg is required (packages.txt) to write the test library")
    dst.parent.mkdir(parents=True, exist_ok=True)
    command = [exe, "-nostdin", "-v", "error", "-y", "-ss", str(start), "-t", str(seconds)]
    command += ["-i", str(src), "-vn", "-map_metadata", "-1", *CODECS[dst.suffix], str(dst)]
    subprocess.run(command, check=True)
    return dst


def image_bytes(color, size=(96, 96), fmt="JPEG", border=None) -> bytes:
    """A solid ``color`` image; ``border`` paints the sides of a landscape image another colour,
    exactly the bands a square center crop removes."""
    image = Image.new("RGB", size, color)
    if border is not None:
        band = (size[0] - size[1]) // 2
        image.paste(border, (0, 0, band, size[1]))
        image.paste(border, (size[0] - band, 0, size[0], size[1]))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def tag_mp3(path: Path, covers=(), **text) -> None:
    """ID3v2.4 text frames and APIC pictures: ``covers`` is a list of (picture type, bytes)."""
    from mutagen.id3 import APIC, ID3, TALB, TCON, TDRC, TIT2, TPE1, TPE2

    frames = {"title": TIT2, "artist": TPE1, "album": TALB, "albumartist": TPE2}
    frames |= {"date": TDRC, "genre": TCON}
    tags = ID3()
    for key, value in text.items():
        tags.add(frames[key](encoding=3, text=[value]))
    for i, (kind, data) in enumerate(covers):
        tags.add(APIC(encoding=3, mime="image/jpeg", type=kind, desc=f"picture {i}", data=data))
    tags.save(path)


def _flac_picture(data: bytes, kind: int = 3):
    from mutagen.flac import Picture

    picture = Picture()
    picture.type = kind
    picture.mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    picture.data = data
    return picture


def tag_flac(path: Path, cover: bytes | None = None, **text) -> None:
    """Vorbis comments and a FLAC PICTURE block (front cover)."""
    from mutagen.flac import FLAC

    audio = FLAC(path)
    for key, value in text.items():
        audio[key] = value
    if cover is not None:
        audio.add_picture(_flac_picture(cover))
    audio.save()


def tag_ogg(path: Path, cover: bytes | None = None, **text) -> None:
    """Vorbis comments and a base64 METADATA_BLOCK_PICTURE (the Xiph-recommended cover field)."""
    from mutagen.oggvorbis import OggVorbis

    audio = OggVorbis(path)
    for key, value in text.items():
        audio[key] = value
    if cover is not None:
        block = _flac_picture(cover).write()
        audio["metadata_block_picture"] = [base64.b64encode(block).decode("ascii")]
    audio.save()


def tag_m4a(path: Path, cover: bytes | None = None, **text) -> None:
    """iTunes atoms and a ``covr`` picture."""
    from mutagen.mp4 import MP4, MP4Cover

    atoms = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "date": "\xa9day"}
    atoms |= {"genre": "\xa9gen", "albumartist": "aART"}
    audio = MP4(path)
    for key, value in text.items():
        audio[atoms[key]] = [value]
    if cover is not None:
        kind = MP4Cover.FORMAT_PNG if cover.startswith(b"\x89PNG") else MP4Cover.FORMAT_JPEG
        audio["covr"] = [MP4Cover(cover, imageformat=kind)]
    audio.save()


def with_junk_artist(path: Path) -> Path:
    """Tag ``path`` (MP3 or WAV) with a title and an artist frame declared UTF-8 that holds a
    latin-1 byte, as a tagger that got its encodings wrong leaves it (mutagen skips the frame)."""
    import mutagen
    from mutagen.id3 import TIT2, TPE1

    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.add(TIT2(encoding=3, text=["Junk Title"]))
    audio.tags.add(TPE1(encoding=3, text=["ARTISTMARK"]))
    audio.save()
    data = path.read_bytes()
    assert data.count(b"ARTISTMARK") == 1
    path.write_bytes(data.replace(b"ARTISTMARK", b"Beyonc\xe9!!!"))
    return path


def write_album(folder: Path, clip: Path, *, artist: str | None = None) -> Path:
    """An album folder for the CLI tests: "01 - Night Drive.mp3" tagged with the title "Tagged
    Title" (and ``artist``), an untagged "02_Slow Lights.mp3" (3.5 s each, cut from ``clip``), a
    text file posing as "03 - Broken.mp3" and a notes.txt that is no audio at all."""
    for name, start in (("01 - Night Drive.mp3", 0), ("02_Slow Lights.mp3", 12)):
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-ss", str(start), "-t", "3.5"]
            + ["-i", str(clip), "-map_metadata", "-1", str(folder / name)],
            check=True,
        )
    text = {"title": "Tagged Title"} | ({"artist": artist} if artist else {})
    tag_mp3(folder / "01 - Night Drive.mp3", **text)
    (folder / "03 - Broken.mp3").write_text("not audio at all")
    (folder / "notes.txt").write_text("ignored: not an audio extension")
    return folder
