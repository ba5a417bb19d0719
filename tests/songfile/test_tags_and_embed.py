"""albumcover.songfile.tags: a cover embedded into real files of every container (audio untouched,
other tags and pictures kept, the old front cover replaced), song tags read back, bad input."""

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from albumcover.songfile.embed import MAX_COVER_BYTES, embed_cover
from albumcover.songfile.tags import (
    SongFileError,
    SongTags,
    match_category,
    read_front_cover,
    read_song_tags,
    year_of,
)
from tests.music_library import cut_clip, image_bytes, with_junk_artist
from tests.unprivileged import call_unprivileged

CONTAINERS = (".mp3", ".flac", ".m4a", ".ogg", ".opus", ".wav")
RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def ffmpeg_audio(path: Path, fmt: str) -> bytes:
    """The song's audio as ffmpeg sees it: ``"pcm"`` the decoded samples (float32),
    ``"packets"`` an md5 per compressed packet (stream copy, nothing decoded)."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a"]
    if fmt == "pcm":
        command += ["-c:a", "pcm_f32le", "-f", "f32le", "-"]
    else:
        command += ["-c:a", "copy", "-f", "framemd5", "-"]
    return subprocess.run(command, check=True, capture_output=True).stdout


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory, clip_path) -> dict[str, Path]:
    """One second of the shared clip in every container, no tags."""
    folder = tmp_path_factory.mktemp("plain")
    return {ext: cut_clip(clip_path, folder / f"song{ext}", seconds=1.0) for ext in CONTAINERS}


def picture_block(data: bytes, kind: int):
    from mutagen.flac import Picture

    picture = Picture()
    picture.type = kind
    picture.mime = "image/jpeg"
    picture.desc = f"type {kind}"
    picture.data = data
    return picture


def tag_everything(path: Path, front: bytes, back: bytes, id3_version: int = 4) -> None:
    """Text tags (standard and custom), an old front cover and a back cover (type 4)."""
    import mutagen
    from mutagen.id3 import APIC, COMM, ID3, TALB, TCON, TDRC, TIT2, TPE1, TRCK, TXXX
    from mutagen.mp4 import MP4Cover

    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    if isinstance(tags, ID3):
        for frame in (TIT2, TPE1, TALB, TCON, TDRC, TRCK):
            value = {"TDRC": "2004-05-12", "TRCK": "3/12", "TCON": "Jazz"}.get(frame.__name__)
            tags.add(frame(encoding=3, text=[value or f"{frame.__name__} text"]))
        tags.add(TXXX(encoding=3, desc="MOOD", text=["calm"]))
        tags.add(COMM(encoding=3, lang="eng", desc="", text=["a comment"]))
        tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="old front", data=front))
        tags.add(APIC(encoding=3, mime="image/jpeg", type=4, desc="back", data=back))
        audio.save(v2_version=id3_version)
        return
    if type(audio).__name__ == "MP4":
        tags["\xa9nam"], tags["\xa9ART"], tags["\xa9day"] = ["Title"], ["Artist"], ["2004"]
        tags["trkn"] = [(3, 12)]
        tags["----:com.apple.iTunes:MOOD"] = [b"calm"]
        tags["covr"] = [MP4Cover(front), MP4Cover(back)]  # the first covr is the front cover
        audio.save()
        return
    tags["title"], tags["artist"], tags["date"] = "Title", "Artist", "2004"
    tags["tracknumber"], tags["mood"] = "3", "calm"
    if type(audio).__name__ == "FLAC":
        audio.add_picture(picture_block(front, 3))
        audio.add_picture(picture_block(back, 4))
    else:
        tags["metadata_block_picture"] = [
            base64.b64encode(picture_block(kind_data, kind).write()).decode()
            for kind, kind_data in ((3, front), (4, back))
        ]
    audio.save()


def other_tags(path: Path) -> dict:
    """Every tag of the file but the front cover, comparable with ==."""
    import mutagen
    from mutagen.flac import Picture

    audio = mutagen.File(path)
    found = {}
    for key, value in (audio.tags or {}).items():
        if key == "covr":
            found[key] = [bytes(c) for c in value[1:]]
        elif key == "metadata_block_picture":
            blocks = [Picture(base64.b64decode(v)) for v in value]
            found[key] = [(p.type, p.desc, p.data) for p in blocks if p.type != 3]
        elif key.startswith("APIC"):
            if value.type != 3:
                found[key] = (value.type, value.desc, value.data)
        else:
            found[key] = repr(value) if not isinstance(value, list) else [repr(v) for v in value]
    if hasattr(audio, "pictures"):
        found["pictures"] = [(p.type, p.desc, p.data) for p in audio.pictures if p.type != 3]
    return found


def all_pictures(path: Path) -> list[tuple[int, bytes]]:
    import mutagen

    from albumcover.songfile.tags import _pictures_of

    return _pictures_of(mutagen.File(path), path)


@pytest.mark.parametrize("ext", CONTAINERS)
def test_embed_replaces_the_front_cover_and_keeps_the_rest(ext, plain, tmp_path):
    song = tmp_path / f"tagged{ext}"
    shutil.copyfile(plain[ext], song)
    old_front, back = image_bytes(RED), image_bytes(GREEN)
    tag_everything(song, old_front, back)
    cover = tmp_path / "cover.png"
    cover.write_bytes(image_bytes(BLUE, size=(300, 300), fmt="PNG"))
    before = (sha(song), other_tags(song), read_song_tags(song))
    pcm, packets = ffmpeg_audio(song, "pcm"), ffmpeg_audio(song, "packets")

    out = embed_cover(song, cover, tmp_path / "out" / song.name)

    assert out == tmp_path / "out" / song.name
    assert read_front_cover(out) == cover.read_bytes()
    pictures = all_pictures(out)
    assert (3, old_front) not in pictures and pictures.count((3, cover.read_bytes())) <= 1
    if ext != ".m4a":  # MP4 has no picture types: the second covr is the kept back cover
        assert (4, back) in pictures
    assert other_tags(out) == before[1]
    assert read_song_tags(out) == before[2]
    assert ffmpeg_audio(out, "pcm") == pcm and len(pcm) > 100_000
    assert ffmpeg_audio(out, "packets") == packets
    assert sha(song) == before[0]  # the original is only read
    assert temp_files(tmp_path / "out") == [] and temp_files(tmp_path) == []


@pytest.mark.parametrize("ext", CONTAINERS)
def test_embed_into_an_untagged_file_and_in_place(ext, plain, tmp_path):
    song = tmp_path / f"plain{ext}"
    shutil.copyfile(plain[ext], song)
    os.chmod(song, 0o640)
    pcm = ffmpeg_audio(song, "pcm")
    first, second = tmp_path / "a.jpg", tmp_path / "b.jpg"
    first.write_bytes(image_bytes(RED, size=(64, 64)))
    second.write_bytes(image_bytes(GREEN, size=(64, 64)))

    assert embed_cover(song, first, song) == song
    assert read_front_cover(song) == first.read_bytes()
    embed_cover(song, second, song)  # again: the front cover is replaced, not added
    assert [data for kind, data in all_pictures(song) if kind == 3] == [second.read_bytes()]
    assert ffmpeg_audio(song, "pcm") == pcm
    assert os.stat(song).st_mode & 0o777 == 0o640  # the file keeps its permissions
    assert temp_files(tmp_path) == []


def test_id3v23_stays_v23(plain, tmp_path):
    from mutagen.id3 import ID3

    song = tmp_path / "v23.mp3"
    shutil.copyfile(plain[".mp3"], song)
    tag_everything(song, image_bytes(RED), image_bytes(GREEN), id3_version=3)
    assert ID3(song).version[:2] == (2, 3)
    before = read_song_tags(song)
    embed_cover(song, _jpeg(tmp_path), tmp_path / "out.mp3")
    assert ID3(tmp_path / "out.mp3").version[:2] == (2, 3)
    assert read_song_tags(tmp_path / "out.mp3") == before


def _jpeg(folder: Path) -> Path:
    cover = folder / "cover.jpg"
    cover.write_bytes(image_bytes(BLUE))
    return cover


@pytest.fixture
def song(plain, tmp_path) -> Path:
    path = tmp_path / "song.flac"
    shutil.copyfile(plain[".flac"], path)
    return path


def _refused(song: Path, cover: Path, out: Path, match: str) -> None:
    """embed_cover raises a SongFileError matching ``match``; nothing changed or left behind."""
    before = sha(song) if song.is_file() else None
    existed = out.exists()
    out_before = sha(out) if out.is_file() else None
    with pytest.raises(SongFileError, match=match):
        embed_cover(song, cover, out)
    assert (sha(song) if song.is_file() else None) == before
    assert out.exists() == existed and (sha(out) if out.is_file() else None) == out_before
    for folder in {song.parent, out.parent if out.parent.is_dir() else song.parent}:
        assert temp_files(folder) == []


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("text.mp3", b"not audio at all, only words", r"text\.mp3"),
        ("empty.flac", b"", r"empty\.flac: the file is empty"),
        ("noise.ogg", os.urandom(4096), r"noise\.ogg"),
        ("cover.m4a", image_bytes(RED), r"cover\.m4a"),
    ],
)
def test_non_audio_songs_are_refused(name, content, match, tmp_path):
    bad = tmp_path / name
    bad.write_bytes(content)
    _refused(bad, _jpeg(tmp_path), tmp_path / f"out-{name}", match)


def test_corrupt_songs_are_refused(plain, tmp_path):
    # a FLAC whose metadata is cut short, an MP3 with a broken ID3 header
    flac = tmp_path / "cut.flac"
    flac.write_bytes(plain[".flac"].read_bytes()[:60])
    _refused(flac, _jpeg(tmp_path), tmp_path / "out.flac", r"cut\.flac")
    mp3 = tmp_path / "badid3.mp3"
    mp3.write_bytes(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\x00" * 64)
    _refused(mp3, _jpeg(tmp_path), tmp_path / "out.mp3", r"badid3\.mp3")


def test_unsupported_and_missing_songs(tmp_path):
    aiff = tmp_path / "song.aiff"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.5", str(aiff)]
    subprocess.run(cmd, check=True)
    _refused(aiff, _jpeg(tmp_path), tmp_path / "out.aiff", r"song\.aiff: AIFF files are not sup")
    adts = tmp_path / "raw.aac"
    subprocess.run([*cmd[:-1], "-c:a", "aac", str(adts)], check=True)
    _refused(adts, _jpeg(tmp_path), tmp_path / "out.aac", r"raw\.aac: a raw AAC .* M4A first")
    _refused(tmp_path / "gone.mp3", _jpeg(tmp_path), tmp_path / "o.mp3", r"not found.*gone\.mp3")
    (tmp_path / "dir.mp3").mkdir()
    _refused(tmp_path / "dir.mp3", _jpeg(tmp_path), tmp_path / "o.mp3", r"dir\.mp3: not a file")


def test_read_only_targets_are_refused(song, tmp_path):
    cover = _jpeg(tmp_path)
    os.chmod(song, 0o444)
    _refused(song, cover, song, r"song\.flac: the file is read-only")
    # a read-only song may still be copied with its cover
    assert read_front_cover(embed_cover(song, cover, tmp_path / "copy.flac")) == cover.read_bytes()
    existing = tmp_path / "kept.flac"
    shutil.copyfile(song, existing)
    os.chmod(existing, 0o444)
    _refused(song, cover, existing, r"kept\.flac: the file is read-only")


def test_unwritable_outputs_are_refused(song, tmp_path):
    cover = _jpeg(tmp_path)
    _refused(song, cover, tmp_path / "song.mp3", r"FLAC song .* use the extension \.flac")
    (tmp_path / "folder.flac").mkdir()
    _refused(song, cover, tmp_path / "folder.flac", r"folder\.flac: it is a folder")
    (tmp_path / "afile").write_text("a file, not a folder")
    _refused(song, cover, tmp_path / "afile" / "out.flac", r"into .*afile/out\.flac: File exists")


def test_bad_covers_are_refused(song, tmp_path, monkeypatch):
    cases = {
        "words.jpg": (b"this is not an image", "not a readable JPEG or PNG"),
        "cover.gif": (image_bytes(RED, fmt="GIF"), "is GIF, not JPEG or PNG"),
        "cut.jpg": (image_bytes(RED, size=(200, 200))[:300], "not a readable JPEG or PNG"),
        "cut.png": (image_bytes(RED, size=(200, 200), fmt="PNG")[:80], "not a readable JPEG"),
        "empty.png": (b"", "not a readable JPEG or PNG"),
    }
    for name, (data, match) in cases.items():
        (tmp_path / name).write_bytes(data)
        _refused(song, tmp_path / name, tmp_path / "out.flac", f"{name}.*{match}")
        _refused(song, tmp_path / name, song, f"{name}.*{match}")
    _refused(song, tmp_path / "missing.png", tmp_path / "out.flac", r"missing\.png")
    big = tmp_path / "big.jpg"
    big.write_bytes(image_bytes(RED, size=(64, 64)))
    monkeypatch.setattr("albumcover.songfile.embed.MAX_COVER_BYTES", 100)
    _refused(song, big, tmp_path / "out.flac", r"big\.jpg is \d+ bytes; .* at most 100")
    assert MAX_COVER_BYTES >= 10_000_000  # a distributor export (10 MB) fits


def test_read_song_tags_of_every_container(plain, tmp_path):
    from mutagen.id3 import ID3, TCON, TDRC, TIT2, TPE1, TPE2, TPOS, TRCK
    from mutagen.mp4 import MP4

    mp3 = tmp_path / "t.mp3"
    shutil.copyfile(plain[".mp3"], mp3)
    id3 = ID3()
    for frame, text in ((TIT2, "Night"), (TPE1, "Ana"), (TPE2, "Various"), (TCON, "(17)")):
        id3.add(frame(encoding=3, text=[text]))
    id3.add(TDRC(encoding=3, text=["1999-02-03"]))
    id3.add(TRCK(encoding=3, text=["04/11"]))
    id3.add(TPOS(encoding=3, text=["2"]))
    id3.save(mp3)
    tags = read_song_tags(mp3)
    assert tags == SongTags(
        title="Night",
        artist="Ana",
        album_artist="Various",
        date="1999-02-03",
        genre="Rock",  # the ID3v1 genre number resolved
        track_number=4,
        track_total=11,
        disc_number=2,
    )
    assert tags.year == 1999

    m4a = tmp_path / "t.m4a"
    shutil.copyfile(plain[".m4a"], m4a)
    audio = MP4(m4a)
    audio["\xa9nam"], audio["\xa9day"], audio["\xa9gen"] = ["M"], ["2004-05-12T07:00:00Z"], ["Pop"]
    audio["trkn"], audio["disk"] = [(1, 9)], [(1, 2)]
    audio.save()
    tags = read_song_tags(m4a)
    assert (tags.title, tags.year, tags.genre, tags.track_number, tags.track_total) == (
        "M",
        2004,
        "Pop",
        1,
        9,
    )
    assert (tags.disc_number, tags.disc_total) == (1, 2)

    flac = tmp_path / "t.flac"
    shutil.copyfile(plain[".flac"], flac)
    from mutagen.flac import FLAC

    audio = FLAC(flac)
    audio["TITLE"], audio["YEAR"], audio["GENRE"] = "F", "1987", ["Jazz", "Blues"]
    audio["TRACKNUMBER"], audio["TRACKTOTAL"] = "7", "10"
    audio.save()
    tags = read_song_tags(flac)
    assert (tags.title, tags.date, tags.year, tags.genre) == ("F", "1987", 1987, "Jazz; Blues")
    assert (tags.track_number, tags.track_total) == (7, 10)
    assert read_song_tags(plain[".wav"]) == SongTags()


def test_read_song_tags_errors(tmp_path):
    bad = tmp_path / "bad.opus"
    bad.write_text("hello")
    with pytest.raises(SongFileError, match=r"bad\.opus"):
        read_song_tags(bad)
    with pytest.raises(SongFileError, match=r"not found.*nope\.mp3"):
        read_song_tags(tmp_path / "nope.mp3")


@pytest.mark.parametrize(
    "date, year",
    [
        ("2004", 2004),
        ("2004-05-12", 2004),
        ("12/05/1987", 1987),
        ("2004-05-12T07:00:00Z", 2004),
        ("20040512", 2004),
        ("May 1971", 1971),
        ("", None),
        ("n/a", None),
        ("12345", None),
    ],
)
def test_year_of(date, year):
    assert year_of(date) == year


@pytest.mark.parametrize(
    "genre, category",
    [
        ("Rock", "rock"),
        ("Hip-Hop", "hip hop"),
        ("hiphop", "hip hop"),
        ("R&B", "r&b"),
        ("RnB", "r&b"),
        ("Techno", "electronic"),  # a Musicnn genre the prompt builder maps
        ("Chillout", "ambient"),
        ("Pop Rock", "rock"),  # the head noun comes last
        ("Symphonic Metal", "metal"),
        ("Jazz; Blues", "jazz"),
        ("Schlager/Folk", "folk"),  # the first part that maps
        ("Schlager", ""),
        ("", ""),
        ("  ", ""),
    ],
)
def test_match_category(genre, category):
    assert match_category(genre) == category


@pytest.mark.parametrize("ext", [".mp3", ".wav"])
def test_undecodable_id3_frames_are_reported_and_never_lost(ext, plain, tmp_path):
    from albumcover.songfile.id3frames import undecodable_frames

    song = tmp_path / f"junk{ext}"
    shutil.copyfile(plain[ext], song)
    with_junk_artist(song)
    assert undecodable_frames(song) == ["TPE1"]
    tags = read_song_tags(song)
    assert (tags.title, tags.artist) == ("Junk Title", "")
    assert tags.notes == (
        "artist: dropped: its ID3 TPE1 frame is not valid text in the encoding it declares",
    )
    # saving through mutagen would drop the frame: refused, the song as it was
    _refused(song, _jpeg(tmp_path), tmp_path / f"out{ext}", r"junk\.\w+ without losing .* TPE1")
    _refused(song, _jpeg(tmp_path), song, r"without losing its ID3 frame\(s\) TPE1")


def test_valid_id3_text_of_every_encoding_is_not_flagged(plain, tmp_path):
    from mutagen.id3 import COMM, ID3, TIT2, TPE1, TPE2, TXXX

    from albumcover.songfile.id3frames import undecodable_frames

    for version in (3, 4):
        song = tmp_path / f"v{version}.mp3"
        shutil.copyfile(plain[".mp3"], song)
        tags = ID3()
        tags.add(TIT2(encoding=0, text=["Björk"]))
        tags.add(TPE1(encoding=1, text=["坂本龍一", "Ana"]))  # UTF-16, two values
        tags.add(TPE2(encoding=3 if version == 4 else 1, text=["Кино"]))
        tags.add(COMM(encoding=1, lang="eng", desc="d", text=["A"]))
        tags.add(TXXX(encoding=1, desc="MOOD", text=["calm"]))
        tags.save(song, v2_version=version)
        assert undecodable_frames(song) == []
        assert read_song_tags(song).notes == ()
        # ID3v2.3 has no multiple values: mutagen joins them with "/"
        assert read_song_tags(song).artist == ("坂本龍一" if version == 4 else "坂本龍一/Ana")
    assert undecodable_frames(plain[".flac"]) == [] and undecodable_frames(plain[".wav"]) == []


@pytest.mark.parametrize(
    "mode, fmt, depth, colors",
    [("RGB", "JPEG", 24, 0), ("L", "JPEG", 8, 0), ("RGBA", "PNG", 32, 0), ("P", "PNG", 8, None)],
)
def test_flac_picture_block_describes_the_cover(mode, fmt, depth, colors, song, tmp_path):
    from mutagen.flac import FLAC
    from PIL import Image

    cover = tmp_path / f"cover.{fmt.lower()}"
    Image.new("RGB", (320, 200), BLUE).convert(mode).save(cover, fmt)
    embed_cover(song, cover, song)
    (front,) = [p for p in FLAC(song).pictures if p.type == 3]
    assert (front.width, front.height, front.depth) == (320, 200, depth)
    if colors is None:  # an indexed PNG: as many colours as its palette holds
        with Image.open(cover) as image:
            colors = len(image.getpalette()) // 3
        assert colors > 0
    assert front.mime == f"image/{fmt.lower()}" and front.colors == colors


def test_in_place_through_a_symlink_tags_the_file_it_points_at(song, tmp_path):
    link = tmp_path / "link.flac"
    link.symlink_to(song)
    cover = _jpeg(tmp_path)
    embed_cover(link, cover, link)
    assert link.is_symlink() and read_front_cover(song) == cover.read_bytes()
    assert temp_files(tmp_path) == []


def riff_chunk(path: Path, name: bytes) -> bytes:
    """The bytes of the first top-level RIFF chunk called ``name`` (header included)."""
    import struct

    data, pos = path.read_bytes(), 12
    while pos + 8 <= len(data):
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if data[pos : pos + 4] == name:
            return data[pos : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise AssertionError(f"no {name} chunk in {path}")


def test_wav_riff_info_tags_are_read_and_kept(tmp_path):
    wav = tmp_path / "info.wav"
    command = [b"ffmpeg", b"-nostdin", b"-v", b"error", b"-f", b"lavfi", b"-i", b"sine=duration=1"]
    for key, value in {
        b"title": b"Night Drive",
        b"artist": "Björk".encode(),
        b"album": b"Caf\xe9",  # latin-1 bytes: not valid UTF-8, dropped with a note
        b"date": b"2004-05-12",
        b"genre": b"Jazz",
        b"track": b"3",
    }.items():
        command += [b"-metadata", key + b"=" + value]
    subprocess.run([*command, bytes(wav)], check=True)
    tags = read_song_tags(wav)
    assert (tags.title, tags.artist, tags.album, tags.date, tags.year, tags.genre) == (
        "Night Drive",
        "Björk",
        "",
        "2004-05-12",
        2004,
        "Jazz",
    )
    assert tags.track_number == 3 and tags.notes[0].startswith("album: dropped 'Caf\ufffd'")
    info = riff_chunk(wav, b"LIST")
    out = embed_cover(wav, _jpeg(tmp_path), tmp_path / "out.wav")
    assert riff_chunk(out, b"LIST") == info  # the INFO list is kept as it was
    assert riff_chunk(out, b"data") == riff_chunk(wav, b"data")  # and the samples
    assert read_song_tags(out) == tags and read_front_cover(out) == _jpeg(tmp_path).read_bytes()


def test_read_only_folder_is_refused(song, tmp_path):
    # root writes into read-only folders: as root embed_cover runs without that right
    # (tests/unprivileged.py)
    cover, before = _jpeg(tmp_path), sha(song)
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(SongFileError, match=r"locked/out\.flac: Permission denied"):
            call_unprivileged(embed_cover, song, cover, folder / "out.flac")
        assert sha(song) == before and list(folder.iterdir()) == []
        assert temp_files(tmp_path) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("ext", CONTAINERS)
def test_damaged_files_only_ever_raise_song_file_error(ext, plain, tmp_path):
    """Bytes of a tagged file overwritten at random (seeded), some files cut short: reading and
    embedding either work or raise SongFileError; the damaged song is never changed."""
    import random

    base = tmp_path / f"base{ext}"
    shutil.copyfile(plain[ext], base)
    tag_everything(base, image_bytes(RED), image_bytes(GREEN))
    data, cover = base.read_bytes(), _jpeg(tmp_path)
    rng = random.Random(ext)
    for _ in range(30):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):  # the headers and tags are in the first bytes
            damaged[rng.randrange(min(len(damaged), 20_000))] = rng.randrange(256)
        if rng.random() < 0.2:
            damaged = damaged[: rng.randrange(len(damaged))]
        song = tmp_path / f"damaged{ext}"
        song.write_bytes(bytes(damaged))
        for action in (read_song_tags, read_front_cover):
            try:
                action(song)
            except SongFileError:
                pass
        try:
            embed_cover(song, cover, tmp_path / f"out{ext}")
        except SongFileError:
            pass
        assert song.read_bytes() == damaged and temp_files(tmp_path) == []
