"""train.build_dataset on a real little music library: every cover container, a folder cover
shared by an album, broken and silent files, a manifest with bad rows, reruns, the CLI, a push
that cannot reach the Hub. Taggers are the real Musicnn ports, loaded once for the module."""

import csv
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from albumcover.pipeline import describe_song
from albumcover.prompts import CATEGORIES, SongInfo
from tests.music_library import cut_clip, image_bytes, tag_flac, tag_m4a, tag_mp3, tag_ogg
from train.build_dataset import main, parse_args, push_to_hub
from train.dataset.build import build_dataset
from train.dataset.library import ManifestError
from train.dataset.summary import BAD_AUDIO, BAD_COVER, BAD_ROW, NO_COVER
from train.push import PushError

RES = 64
RED, GREEN, BLUE, YELLOW = (220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 220, 20)
MAGENTA, BLACK = (200, 40, 200), (0, 0, 0)
# source -> the colour its cover must have in the dataset
EXPECTED_COLOR = {
    "embedded/a.mp3": RED,
    "embedded/b.flac": GREEN,
    "embedded/c.m4a": BLUE,
    "embedded/d.ogg": YELLOW,
    "Folder Album/01 One.mp3": MAGENTA,
    "Folder Album/02 Two.mp3": MAGENTA,
}


@pytest.fixture(scope="module")
def taggers():
    from albumcover.ear.tagger import Tagger

    return Tagger.load("MTT_musicnn"), Tagger.load("MSD_musicnn")


@pytest.fixture(scope="module")
def library(tmp_path_factory, clip_path) -> Path:
    root = tmp_path_factory.mktemp("music")
    e = root / "embedded"
    # the front cover (type 3) must win over a first, untyped picture
    white = image_bytes((255, 255, 255))
    tag_mp3(
        cut_clip(clip_path, e / "a.mp3"),
        [(0, white), (3, image_bytes(RED))],
        title="Alpha",
        artist="Ana",
        album="Album A",
        date="2004-05-12",
        genre="Rock",
    )
    tag_flac(
        cut_clip(clip_path, e / "b.flac", start=14),
        image_bytes(GREEN, fmt="PNG"),
        title="Beta",
        artist="Bo",
        album="Album B",
        date="2010",
        genre="Techno",
    )
    # no genre tag: the category is inferred by the genre tagger
    tag_m4a(
        cut_clip(clip_path, e / "c.m4a", start=20),
        image_bytes(BLUE),
        title="Gamma",
        artist="Cy",
        album="Album C",
        date="1999",
    )
    tag_ogg(
        cut_clip(clip_path, e / "d.ogg", start=2),
        image_bytes(YELLOW, fmt="PNG"),
        title="Delta",
        artist="Di",
        album="Album D",
        date="2020-01-01",
        genre="Jazz; Blues",
    )
    # an album of two tracks with no embedded art and a landscape Cover.JPG beside them
    f = root / "Folder Album"
    for i, name in enumerate(("01 One", "02 Two")):
        track = cut_clip(clip_path, f / f"{name}.mp3", start=4 + 6 * i)
        tag_mp3(track, title=name[3:], artist="Fay", album="Folder Album", date="2015", genre="Pop")
    # bands of 32 px: whole JPEG blocks, so no black bleeds into the kept square
    (f / "Cover.JPG").write_bytes(image_bytes(MAGENTA, size=(160, 96), border=BLACK))
    (f / "broken.mp3").write_text("this is a text file, not an mp3\n")
    sf.write(f / "silent.wav", np.zeros(16000 * 3, dtype=np.float32), 16000)
    (f / "notes.txt").write_text("not audio, ignored\n")
    # no embedded picture, no image beside it
    cut_clip(clip_path, root / "No Cover" / "lonely.wav")
    # a cover that is no image
    bad = root / "Bad Cover"
    cut_clip(clip_path, bad / "song.flac")
    (bad / "folder.png").write_bytes(b"\x89PNG but truncated")
    # hidden folders (e.g. a player's cache) are not walked
    cut_clip(clip_path, root / ".hidden" / "x.mp3")
    return root


def build(out, library, taggers, **kwargs):
    options = dict(resolution=RES, validation_split=0.4, seed=0, progress=False)
    options.update(kwargs)
    return build_dataset(
        out, audio_dir=library, tagger=taggers[0], genre_tagger=taggers[1], **options
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory, library, taggers):
    out = tmp_path_factory.mktemp("dataset")
    return out, build(out, library, taggers)


def read_rows(out: Path) -> dict[str, list[dict]]:
    rows = {}
    for split in ("train", "validation"):
        path = out / split / "metadata.jsonl"
        rows[split] = (
            [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        )
    return rows


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_rows_follow_the_contract(built, library, taggers):
    out, summary = built
    rows = read_rows(out)
    all_rows = rows["train"] + rows["validation"]
    assert sorted(r["source"] for r in all_rows) == sorted(EXPECTED_COLOR)
    assert summary.total_rows == 6 and summary.images == 5
    for split, split_rows in rows.items():
        for row in split_rows:
            for key in ("file_name", "text", "title", "artist", "album", "date", "category"):
                assert isinstance(row[key], str), key
            assert row["text"] and row["category"] in CATEGORIES
            assert row["tags"] and all(isinstance(t, str) for t in row["tags"])
            assert len(row["scores"]) == 50 and row["tagger"] == "MTT_musicnn"
            assert set(row["scores"]) == set(taggers[0].labels)
            with Image.open(out / split / row["file_name"]) as image:
                assert image.format == "PNG" and image.mode == "RGB" and image.size == (RES, RES)
                pixels = np.asarray(image, dtype=int)
            # every pixel of the cover's colour: the right picture, center-cropped (no black bars)
            expected = EXPECTED_COLOR[row["source"]]
            error = np.abs(pixels - expected)
            assert error.max() <= 30 and error.mean() <= 4, row["source"]

    by_source = {r["source"]: r for r in all_rows}
    a = by_source["embedded/a.mp3"]
    assert (a["title"], a["artist"], a["album"], a["date"]) == (
        "Alpha",
        "Ana",
        "Album A",
        "2004-05-12",
    )
    assert (a["year"], a["category"], a["category_inferred"]) == (2004, "rock", False)
    assert by_source["embedded/b.flac"]["category"] == "electronic"  # "Techno"
    assert by_source["embedded/d.ogg"]["category"] == "jazz"  # "Jazz; Blues"
    assert by_source["embedded/c.m4a"]["category_inferred"] is True
    # the caption is exactly what the app writes for the same song
    expected = describe_song(
        library / "embedded" / "a.mp3",
        SongInfo(title="Alpha", artist="Ana", date="2004", category="rock"),  # year from date
        taggers[0],
    )
    assert a["text"] == expected.prompt
    assert a["tags"] == expected.tag_names
    assert a["scores"] == pytest.approx(expected.tags.scores, abs=1e-6)
    # files get the permissions a plain open() gives, not mkstemp's owner-only ones
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "train" / "metadata.jsonl").stat().st_mode & 0o777 == 0o666 & ~umask
    card = (out / "README.md").read_text()
    assert "text-to-image" in card and "MTT_musicnn" in card


def test_albums_share_one_image_and_never_straddle_the_split(built):
    out, _ = built
    rows = read_rows(out)
    albums = {split: {r["album"] for r in split_rows} for split, split_rows in rows.items()}
    assert not albums["train"] & albums["validation"]
    assert len(albums["validation"]) == 2  # round(5 albums * 0.4)
    folder = [r for s in rows.values() for r in s if r["album"] == "Folder Album"]
    assert len(folder) == 2 and folder[0]["file_name"] == folder[1]["file_name"]
    for split, split_rows in rows.items():
        # one image per album, and no image file that no row names
        assert {p.name for p in (out / split).glob("*.png")} == {r["file_name"] for r in split_rows}


def test_skipped_files_are_reported_with_reasons(built):
    _, summary = built
    reasons = {s.source: s.reason for s in summary.skipped}
    assert reasons == {
        "Folder Album/broken.mp3": BAD_AUDIO,
        "Folder Album/silent.wav": BAD_AUDIO,
        "No Cover/lonely.wav": NO_COVER,
        "Bad Cover/song.flac": BAD_COVER,
    }
    details = {s.source: s.detail for s in summary.skipped}
    assert "silent" in details["Folder Album/silent.wav"].lower()
    assert "folder.png" in details["Bad Cover/song.flac"]
    text = summary.format()
    for source in reasons:
        assert source in text


def test_rebuild_changes_nothing_and_tags_nothing(built, library, taggers):
    out, first = built
    assert first.tagged == 6 and first.cached == 0
    before = snapshot(out)
    again = build(out, library, taggers)
    assert (again.tagged, again.cached, again.written) == (0, 6, 0)
    assert snapshot(out) == before  # same bytes, not even rewritten

    # a file that changed on disk is tagged again; the others come from the cache
    track = library / "embedded" / "b.flac"
    stat = track.stat()
    os.utime(track, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = build(out, library, taggers)
    assert (third.tagged, third.cached) == (1, 5)
    assert {k: v[0] for k, v in snapshot(out).items() if not k.startswith(".cache")} == {
        k: v[0] for k, v in before.items() if not k.startswith(".cache")
    }


def test_new_split_and_resolution_replace_the_old_files(built, library, taggers, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(built[0], out)  # with its cache: no tagging here
    (out / "train" / ".metadata.jsonl.abc.tmp").write_text("left by a killed run")
    summary = build(out, library, taggers, validation_split=0.0, resolution=32)
    assert summary.tagged == 0 and summary.rows == {"train": 6, "validation": 0}
    assert not (out / "validation").exists()
    names = {p.name for p in (out / "train").iterdir()}
    assert names == {"metadata.jsonl"} | {r["file_name"] for r in read_rows(out)["train"]}
    for name in names - {"metadata.jsonl"}:
        with Image.open(out / "train" / name) as image:
            assert image.size == (32, 32)


def test_captions_fit_the_text_encoder_given_by_tokenizer(built, library, taggers, tmp_path):
    """--tokenizer counts with the model's own tokenizer, as the app does when it serves."""
    from tests.tiny_models import save_tiny_sd

    model = save_tiny_sd(tmp_path / "sd")
    from albumcover.paint.families import load_budget

    count = load_budget(str(model)).count  # the pipeline folder's tokenizer/ subfolder
    out = tmp_path / "counted"
    shutil.copytree(built[0], out)  # reuse the recorded tags: no tagging in this test
    build(out, library, taggers, count_tokens=count)
    uncounted, counted = read_rows(built[0]), read_rows(out)
    rows = counted["train"] + counted["validation"]
    assert rows and all(count(row["text"]) <= 77 for row in rows)
    # without a tokenizer nothing is cut; the tiny one spends a token per byte: captions got cut
    before = {r["source"]: r["text"] for r in uncounted["train"] + uncounted["validation"]}
    assert any(before[row["source"]] != row["text"] for row in rows)


def test_unloadable_tokenizer_is_a_clear_error(library, tmp_path, capsys):
    args = parse_args(
        ["--audio_dir", str(library), "--output_dir", str(tmp_path / "o")]
        + ["--tokenizer", str(tmp_path / "no-such-model")]
    )
    assert main(args) == 1
    assert "cannot load a tokenizer from" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_manifest_with_bad_rows(tmp_path, library, taggers):
    music = tmp_path / "m"
    music.mkdir()
    shutil.copy(library / "embedded" / "a.mp3", music / "a.mp3")
    shutil.copy(library / "Folder Album" / "02 Two.mp3", music / "two.mp3")
    (music / "a.jpg").write_bytes(image_bytes(RED))
    (music / "two.png").write_bytes(image_bytes(GREEN, fmt="PNG"))
    manifest = music / "tracks.csv"
    header = ["audio", "image", "title", "artist", "date", "category", "album", "license"]
    lines = [
        ["a.mp3", "a.jpg", "Alpha", "Ana", "2004", "Rock", "A", "https://cc/by"],  # line 2
        ["two.mp3", "two.png", "Two", "Fay", "2015", "", "", ""],  # line 3: inferred
        ["gone.mp3", "a.jpg", "Gone", "X", "2000", "rock", "", ""],  # line 4: no audio
        ["a.mp3", "a.jpg", "Polka", "X", "2000", "Schlager", "", ""],  # line 5: category
        ["a.mp3", "", "No image", "X", "2000", "rock", "", ""],  # line 6: empty image
        ["a.mp3", "a.jpg", "Short"],  # line 7: too few cells
    ]
    with manifest.open("w", newline="") as f:
        csv.writer(f).writerows([header, *lines])
    out = tmp_path / "out"
    summary = build_dataset(
        out,
        manifest=manifest,
        resolution=RES,
        validation_split=0.0,
        tagger=taggers[0],
        genre_tagger=taggers[1],
        progress=False,
    )
    rows = read_rows(out)["train"]
    assert [(r["source"], r["title"]) for r in rows] == [("a.mp3", "Alpha"), ("two.mp3", "Two")]
    assert rows[0]["license"] == "https://cc/by" and rows[0]["category"] == "rock"
    assert rows[1]["category_inferred"] is True and rows[1]["category"] in CATEGORIES
    bad = {s.source: s.detail for s in summary.skipped if s.reason == BAD_ROW}
    assert set(bad) == {f"tracks.csv line {n}" for n in (4, 5, 6, 7)}
    assert "gone.mp3" in bad["tracks.csv line 4"]
    assert "Schlager" in bad["tracks.csv line 5"]
    assert "image" in bad["tracks.csv line 6"]

    # the category of line 2 is now left to the audio: only the genre tagger runs, on that track
    lines[0][5] = ""
    with manifest.open("w", newline="") as f:
        csv.writer(f).writerows([header, *lines[:2]])
    again = build_dataset(
        out,
        manifest=manifest,
        resolution=RES,
        validation_split=0.0,
        tagger=taggers[0],
        genre_tagger=taggers[1],
        progress=False,
    )
    assert (again.tagged, again.cached) == (1, 1)
    first = read_rows(out)["train"][0]
    assert first["category_inferred"] is True and first["scores"] == rows[0]["scores"]


def test_manifest_that_cannot_be_used(tmp_path, taggers):
    manifest = tmp_path / "m.csv"
    manifest.write_text("audio,image,title\na.mp3,a.jpg,A\n")
    with pytest.raises(ManifestError, match="artist, date, category"):
        build_dataset(tmp_path / "out", manifest=manifest, tagger=taggers[0], progress=False)
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"audio": "a.mp3"\n[1, 2]\n')
    out = tmp_path / "out"
    summary = build_dataset(out, manifest=jsonl, tagger=taggers[0], progress=False)
    assert summary.total_rows == 0 and not out.exists()  # nothing usable: nothing written
    details = {s.source: s.detail for s in summary.skipped}
    assert "not valid JSON" in details["m.jsonl line 1"]
    assert "not a JSON object" in details["m.jsonl line 2"]


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "--output_dir"),
        (["--output_dir", "{tmp}/o"], "exactly one of --audio_dir and --manifest"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--manifest", "{csv}"], "exactly one"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}/missing"], "is not a folder"),
        (["--output_dir", "{tmp}/o", "--manifest", "{tmp}/m.txt"], "is not a file"),
        (["--output_dir", "{tmp}", "--audio_dir", "{tmp}"], "must not be the music folder"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--resolution", "500"], "multiple"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--resolution", "0"], "multiple"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--validation_split", "1"], "[0, 1)"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--validation_split", "-0.1"], "[0"),
        (
            ["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--hub_private_repo"],
            "--push_to_hub",
        ),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--push_to_hub", "me/x"], "no value"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--hub_token", "hf_x"], "auth login"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--model", "nope"], "--model"),
        (["--output_dir", "{tmp}/o", "--audio_dir", "{tmp}", "--style", "nope"], "--style"),
        (
            [
                "--output_dir",
                "{tmp}/o",
                "--audio_dir",
                "{tmp}",
                "--push_to_hub",
                "--hub_model_id",
                "a b",
            ],
            "repo id",
        ),
        (["--output_dir", "{csv}", "--audio_dir", "{tmp}"], "not a folder"),
    ],
)
def test_cli_rejects_impossible_flags(argv, message, tmp_path, capsys):
    (tmp_path / "m.csv").write_text("audio,image,title,artist,date,category\n")
    fill = {"tmp": str(tmp_path), "csv": str(tmp_path / "m.csv")}
    code, err = run_cli([a.format(**fill) for a in argv], capsys)
    assert code == 2 and message in err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_push_failure_keeps_the_local_dataset(tmp_path, library, monkeypatch, capsys):
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(library / "embedded" / "a.mp3", music / "a.mp3")
    out = tmp_path / "out"
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    argv = ["--audio_dir", str(music), "--output_dir", str(out), "--resolution", "32"]
    flags = ["--validation_split", "0", "--push_to_hub", "--hub_model_id", "me/covers"]
    code = main(parse_args([*argv, *flags]))
    captured = capsys.readouterr()
    assert code == 1
    assert "Dataset in" in captured.out and "1 tracks" in captured.out
    assert "to the Hub dataset repo 'me/covers' failed" in captured.err
    assert "hf auth login" in captured.err
    assert (
        f"python -m train.push {out} --hub_model_id me/covers --repo_type dataset" in captured.err
    )
    assert "hf_not_a_real_token_123" not in captured.out + captured.err
    rows = read_rows(out)["train"]
    assert len(rows) == 1 and (out / "train" / rows[0]["file_name"]).is_file()

    with pytest.raises(PushError, match="local output .* is complete"):
        push_to_hub(out, "me/covers", endpoint=f"http://127.0.0.1:{closed_port()}")
