"""Tag text from files is clean or reported: albumcover.songfile.tagtext on its own, then real
tagged files (ID3 latin-1 frames, Vorbis comments with raw bytes, bidi overrides) through the
dataset builder to the captions and its summary, and the CLI's album prompts equal to those
captions."""

import csv
import json
import subprocess
from pathlib import Path

import pytest

from albumcover.cli.main import main as cli_main
from albumcover.songfile.tags import read_song_tags
from albumcover.songfile.tagtext import clean_tag_text
from tests.music_library import cut_clip, image_bytes, tag_flac, with_junk_artist
from train.dataset.build import build_dataset

RES = 32


def misread(text: str) -> str:
    """``text``'s UTF-8 bytes read as cp1252, the bytes it leaves undefined as latin-1."""
    return "".join(
        chr(b) if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else bytes([b]).decode("cp1252")
        for b in text.encode()
    )


@pytest.mark.parametrize(
    "raw, clean, note",
    [
        ("Björk", "Björk", ""),
        ("  Sigur   Rós\n", "Sigur Rós", ""),  # blanks: cleaned without a note
        ("\ufeffTitle\x00", "Title", ""),  # a BOM and a NUL terminator
        ("坂本龍一", "坂本龍一", ""),
        ("CAFÉ\xa0NOIR", "CAFÉ NOIR", ""),  # É + no-break space is no mis-decoded "ɠ"
        ("naïve café", "naïve café", ""),
        ("BeyoncÃ©", "Beyoncé", "repaired mis-decoded"),  # UTF-8 read as latin-1
        ("donâ€™t", "don’t", "repaired"),  # ... as cp1252
        ("Ã\xa0 la carte", "à la carte", "repaired"),
        ("ÐšÐ¸Ð½Ð¾", "Кино", "repaired"),  # Cyrillic
        ("ZaÅ¼Ã³Å‚Ä‡", "Zażółć", "repaired"),  # Polish
        ("ÃƒÂ©tÃƒÂ©", "été", "repaired"),  # mis-decoded twice
        ("RÃ³s 坂本", "Rós 坂本", "repaired"),  # mojibake beside CJK
        ("PERÚ\xa0LIVE", "PERÚ LIVE", ""),  # not "PERڠLIVE": no word mixes two scripts
        ("Škoda".encode().decode("cp1252"), "Škoda", "repaired"),  # "Å\xa0koda"
        (misread("日本語の歌"), "日本語の歌", "repaired"),  # kanji + kana in one word
        ("ΑΘΗΝΑ".encode().decode("latin-1"), "ΑΘΗΝΑ", "repaired"),  # C1 controls: latin-1 read
        ("שלום".encode().decode("latin-1"), "שלום", "repaired"),
        ("A\u202eB\u2066C", "ABC", "removed bidirectional control"),
        ("A\x07B\x1b", "AB", "removed control characters"),
        ("Beyonc\ufffd", "", "dropped 'Beyonc\ufffd': not valid text"),
        ("Beyoncé feat. BeyoncÃ©", "", "cannot be repaired for certain"),
    ],
)
def test_clean_tag_text(raw, clean, note):
    text, said = clean_tag_text(raw)
    assert text == clean
    assert (note in said) if note else said == ""
    assert clean_tag_text(text) == (text, "")  # clean text stays as it is


def ffmpeg_tagged(src: Path, dst: Path, **tags: bytes) -> Path:
    """A copy of ``src`` whose tags ffmpeg writes from raw bytes, the way a tagger with another
    idea of the encoding would: Vorbis comments get the bytes as they are."""
    command = [b"ffmpeg", b"-nostdin", b"-v", b"error", b"-y", b"-i", bytes(src), b"-c", b"copy"]
    for key, value in tags.items():
        command += [b"-metadata", key.encode() + b"=" + value]
    subprocess.run([*command, bytes(dst)], check=True)
    return dst


@pytest.fixture(scope="module")
def messy(tmp_path_factory, clip_path) -> Path:
    """An album folder of real files whose tag text is mis-decoded, undecodable or spoofed."""
    from mutagen.id3 import ID3, TALB, TCON, TIT2, TPE1

    folder = tmp_path_factory.mktemp("messy") / "Album"
    # ID3 latin-1 frames (encoding 0): one holding the UTF-8 bytes of "Beyoncé" (an old tagger
    # writing UTF-8 into a latin-1 frame), one a true latin-1 "Björk".
    mp3 = cut_clip(clip_path, folder / "01 Latin.mp3", seconds=3.0)
    id3 = ID3()
    id3.add(TIT2(encoding=0, text=["Beyoncé".encode().decode("latin-1")]))
    id3.add(TPE1(encoding=0, text=["Björk"]))
    id3.add(TALB(encoding=0, text=["Messy"]))
    id3.add(TCON(encoding=0, text=["Jazz"]))
    id3.save(mp3, v2_version=3)
    # Vorbis comments written as raw bytes: a latin-1 title (not valid UTF-8), a title stored
    # mis-decoded once already (valid UTF-8 of "ÐšÐ¸Ð½Ð¾") as the artist
    ogg = cut_clip(clip_path, folder / "raw.ogg", seconds=3.0, start=12)
    ffmpeg_tagged(
        ogg,
        folder / "02 Raw.ogg",
        title=b"Beyonc\xe9",
        artist="Кино".encode().decode("cp1252").encode(),
        album=b"Messy",
        genre=b"Jazz",
    )
    ogg.unlink()
    # bidirectional overrides and a control character (mutagen writes them as they are)
    flac = cut_clip(clip_path, folder / "03 Bidi.flac", seconds=3.0, start=20)
    tag_flac(flac, title="Night\u202e Drive\u202c", artist="Ana\x07", album="Messy", genre="Jazz")
    # an ID3 frame declared UTF-8 holding a latin-1 byte: mutagen skips it; the reader says so
    with_junk_artist(cut_clip(clip_path, folder / "04 Junk.mp3", seconds=3.0, start=6))
    (folder / "cover.png").write_bytes(image_bytes((200, 40, 40), fmt="PNG"))
    return folder


@pytest.fixture(scope="module")
def taggers():
    from albumcover.ear.tagger import Tagger

    return Tagger.load("MTT_musicnn"), Tagger.load("MSD_musicnn")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, messy, taggers):
    out = tmp_path_factory.mktemp("dataset")
    summary = build_dataset(
        out,
        audio_dir=messy,
        tagger=taggers[0],
        genre_tagger=taggers[1],
        resolution=RES,
        validation_split=0.0,
        progress=False,
    )
    rows = [
        json.loads(line)
        for line in (out / "train" / "metadata.jsonl").read_text().split("\n")
        if line
    ]
    return summary, {r["source"]: r for r in rows}


def test_tag_text_reaches_captions_clean(dataset):
    summary, rows = dataset
    assert sorted(rows) == ["01 Latin.mp3", "02 Raw.ogg", "03 Bidi.flac", "04 Junk.mp3"]
    assert (rows["04 Junk.mp3"]["title"], rows["04 Junk.mp3"]["artist"]) == ("Junk Title", "")
    latin, raw, bidi = rows["01 Latin.mp3"], rows["02 Raw.ogg"], rows["03 Bidi.flac"]
    assert (latin["title"], latin["artist"]) == ("Beyoncé", "Björk")
    assert "titled Beyoncé" in latin["text"] and "by Björk" in latin["text"]
    assert (raw["title"], raw["artist"]) == ("", "Кино")  # undecodable title dropped
    assert "titled" not in raw["text"] and "by Кино" in raw["text"]
    assert (bidi["title"], bidi["artist"]) == ("Night Drive", "Ana")
    assert "titled Night Drive" in bidi["text"]
    for row in rows.values():
        for bad in ("Ã", "Ð", "\ufffd", "\u202e", "\u202c", "\x07"):
            assert bad not in row["text"] and bad not in row["title"] + row["artist"], row

    by_field = {(source, note.split(":", 1)[0]): note for source, note in summary.tag_notes}
    assert set(by_field) == {
        ("01 Latin.mp3", "title"),
        ("02 Raw.ogg", "title"),
        ("02 Raw.ogg", "artist"),
        ("03 Bidi.flac", "title"),
        ("03 Bidi.flac", "artist"),
        ("04 Junk.mp3", "artist"),
    }
    assert "repaired mis-decoded" in by_field[("01 Latin.mp3", "title")]
    assert "dropped" in by_field[("02 Raw.ogg", "title")]
    assert "bidirectional" in by_field[("03 Bidi.flac", "title")]
    assert "control characters" in by_field[("03 Bidi.flac", "artist")]
    assert "TPE1 frame is not valid text" in by_field[("04 Junk.mp3", "artist")]
    text = summary.format()
    assert "Tag text repaired or dropped (6):" in text
    assert "02 Raw.ogg: title: dropped 'Beyonc\ufffd'" in text


def test_cli_album_prompts_are_the_training_captions(dataset, messy, capsys):
    _, rows = dataset
    assert cli_main(["cover", str(messy), "--prompt-only"]) == 0
    prompts = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    for source in ("01 Latin.mp3", "03 Bidi.flac", "04 Junk.mp3"):  # tagged titles: the same
        assert prompts[str(messy / source)] == rows[source]["text"]
    # a title dropped from the tags: the CLI names the track by its file name instead
    assert prompts[str(messy / "02 Raw.ogg")] != rows["02 Raw.ogg"]["text"]
    assert "titled Raw" in prompts[str(messy / "02 Raw.ogg")]


def test_manifest_text_is_cleaned_and_reported(tmp_path, messy, taggers):
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(
            [
                ["audio", "image", "title", "artist", "date", "category"],
                [
                    str(messy / "03 Bidi.flac"),
                    str(messy / "cover.png"),
                    "ZaÅ¼Ã³Å‚Ä‡",
                    "A\u202eB",
                    "2001",
                    "jazz",
                ],
            ]
        )
    out = tmp_path / "out"
    summary = build_dataset(
        out,
        manifest=manifest,
        tagger=taggers[0],
        genre_tagger=taggers[1],
        resolution=RES,
        validation_split=0.0,
        progress=False,
    )
    row = json.loads((out / "train" / "metadata.jsonl").read_text())
    assert (row["title"], row["artist"]) == ("Zażółć", "AB")
    assert "titled Zażółć" in row["text"]
    assert [note.split(":", 1)[0] for _, note in summary.tag_notes] == ["title", "artist"]


def test_read_song_tags_reports_each_field(messy):
    tags = read_song_tags(messy / "02 Raw.ogg")
    assert (tags.title, tags.artist, tags.album, tags.genre) == ("", "Кино", "Messy", "Jazz")
    assert [n.split(":", 1)[0] for n in tags.notes] == ["title", "artist"]
