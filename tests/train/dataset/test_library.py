"""train.dataset.library: walking a music folder, tags and covers from every container (read by
albumcover.songfile.tags), manifests."""

import base64
import json

import pytest

from albumcover.songfile.tags import SongTags
from tests.music_library import cut_clip, image_bytes, tag_m4a, tag_mp3
from train.dataset.library import (
    LibraryError,
    ManifestError,
    find_audio_files,
    find_folder_cover,
    read_manifest,
    read_track,
)


def test_folder_cover_names_and_priority(tmp_path):
    assert find_folder_cover(tmp_path) is None
    (tmp_path / "FRONT.PNG").write_bytes(b"x")
    assert find_folder_cover(tmp_path).name == "FRONT.PNG"
    (tmp_path / "Folder.jpg").write_bytes(b"x")
    assert find_folder_cover(tmp_path).name == "Folder.jpg"
    (tmp_path / "cover.webp").write_bytes(b"x")
    (tmp_path / "cover.txt").write_bytes(b"x")
    (tmp_path / "cover.jpg").mkdir()  # a folder is no cover
    assert find_folder_cover(tmp_path).name == "cover.webp"


def test_find_audio_files(tmp_path):
    for name in ("b/2.FLAC", "b/1.mp3", "a.opus", ".git/x.mp3", "b/.hidden.mp3", "c/readme.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)]
    assert found == ["a.opus", "b/1.mp3", "b/2.FLAC"]
    with pytest.raises(LibraryError, match="missing"):
        find_audio_files(tmp_path / "missing")


@pytest.fixture(scope="module")
def clips(tmp_path_factory, clip_path):
    folder = tmp_path_factory.mktemp("clips")
    return {ext: cut_clip(clip_path, folder / f"c{ext}", seconds=1.0) for ext in (".mp3", ".opus")}


def test_read_track_prefers_the_front_cover(clips):
    front, other = image_bytes((255, 0, 0)), image_bytes((0, 0, 255))
    tag_mp3(clips[".mp3"], [(0, other), (3, front)], title="T", artist="A", genre="(17)")
    tags, cover = read_track(clips[".mp3"])
    assert cover == front
    assert tags == SongTags(title="T", artist="A", genre="Rock")  # ID3v1 genre number resolved
    tag_mp3(clips[".mp3"], [(0, other)])
    assert read_track(clips[".mp3"])[1] == other  # no front cover: the first picture


def test_read_track_opus_picture_and_broken_picture(clips):
    from mutagen.flac import Picture
    from mutagen.oggopus import OggOpus

    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", image_bytes((0, 255, 0), fmt="PNG")
    audio = OggOpus(clips[".opus"])
    audio["title"] = "Opus"
    audio["metadata_block_picture"] = [
        base64.b64encode(b"\x00\x00\x00\x03garbage").decode(),  # skipped with a warning
        base64.b64encode(picture.write()).decode(),
    ]
    audio.save()
    tags, cover = read_track(clips[".opus"])
    assert tags.title == "Opus" and cover == picture.data


def test_read_track_errors(tmp_path, clip_path):
    text = tmp_path / "fake.mp3"
    text.write_text("hello")
    with pytest.raises(LibraryError, match="fake.mp3"):
        read_track(text)
    wav = cut_clip(clip_path, tmp_path / "plain.wav", seconds=0.5)
    assert read_track(wav) == (SongTags(), None)
    m4a = cut_clip(clip_path, tmp_path / "x.m4a", seconds=0.5)
    tag_m4a(m4a, None, title="M", albumartist="Various", date="2001")
    assert read_track(m4a) == (SongTags(title="M", album_artist="Various", date="2001"), None)


def test_manifest_jsonl(tmp_path):
    (tmp_path / "a.mp3").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jpg").write_bytes(b"")
    good = {"audio": "a.mp3", "image": "sub/a.jpg", "title": "T", "artist": "A", "date": 2001}
    good |= {"category": "hip-hop", "album": None}
    lines = [
        json.dumps(good),
        "",
        json.dumps({"audio": "a.mp3", "image": "sub/a.jpg"}),
        json.dumps(good | {"title": ["a", "list"]}),
        json.dumps(good | {"audio": "../../etc/none.mp3"}),
    ]
    manifest = tmp_path / "m.JSONL"
    manifest.write_text("\n".join(lines) + "\n")
    rows, bad = read_manifest(manifest)
    assert len(rows) == 1
    row = rows[0]
    assert row.audio == (tmp_path / "a.mp3").resolve() and row.image.name == "a.jpg"
    assert (row.date, row.category, row.album, row.line) == ("2001", "hip hop", "", 1)
    reasons = {b.line: b.reason for b in bad}
    assert set(reasons) == {3, 4, 5}
    assert "lacks field(s) title, artist, date, category" in reasons[3]
    assert "title must be text" in reasons[4]
    assert "audio file not found" in reasons[5]


def test_manifest_csv_header_and_bom(tmp_path):
    (tmp_path / "a.mp3").write_bytes(b"")
    (tmp_path / "a.png").write_bytes(b"")
    manifest = tmp_path / "m.csv"
    text = 'Audio,IMAGE,title,artist,date,category\na.mp3,a.png,"Hello, World",X,1999,\n'
    manifest.write_text("\ufeff" + text, encoding="utf-8")
    rows, bad = read_manifest(manifest)
    assert not bad and rows[0].title == "Hello, World" and rows[0].category == ""


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("m.txt", "audio,image\n", "must be a .csv or .jsonl"),
        ("m.csv", "", "lacks column(s) audio, image"),
        ("m.csv", "audio,image,title,artist,date,category\n", "has no rows"),
        ("m.jsonl", "\n\n", "has no rows"),
        ("missing.csv", None, "cannot read manifest"),
        ("m.csv", b"\xff\xfe\x00bad", "cannot read manifest"),
    ],
)
def test_unusable_manifests(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(path)
