"""Dataset covers go through the one decoder: a 16-bit or transparent cover becomes the image it
shows, a tiny one is skipped (or taken, when asked, with a note), and merge decodes each PNG."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from tests import hostile_images as hostile
from tests.music_library import cut_clip, tag_flac
from train.dataset.build import build_dataset
from train.dataset.covers import MIN_COVER_PX
from train.dataset.summary import TINY_COVER


@pytest.fixture(scope="module")
def taggers():
    from albumcover.ear.tagger import Tagger

    return Tagger.load("MTT_musicnn"), Tagger.load("MSD_musicnn")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def library(tmp_path_factory, clip_path):
    root = tmp_path_factory.mktemp("covers_library")
    deep = hostile.sixteen_bit_gray(root / "g16.png", 128).read_bytes()
    tag_flac(cut_clip(clip_path, root / "deep.flac"), deep, title="Deep", artist="Ana",
             album="Deep", date="2020", genre="Rock")  # fmt: skip
    one = png(Image.new("RGB", (1, 1), (200, 30, 30)))
    tag_flac(cut_clip(clip_path, root / "tiny.flac", start=14), one, title="Tiny", artist="Bo",
             album="Tiny", date="2021", genre="Jazz")  # fmt: skip
    return root


def build(out, library, taggers, **kwargs):
    return build_dataset(
        out,
        audio_dir=library,
        tagger=taggers[0],
        genre_tagger=taggers[1],
        resolution=64,
        validation_split=0,
        progress=False,
        **kwargs,
    )


def images(out):
    return sorted((out / "train").glob("*.png"))


def test_a_tiny_cover_is_skipped_and_a_sixteen_bit_one_kept_as_it_shows(tmp_path, library, taggers):
    summary = build(tmp_path / "d", library, taggers)
    tiny = [s for s in summary.skipped if s.reason == TINY_COVER]
    assert [s.source for s in tiny] == ["tiny.flac"]
    assert f"1 x 1 pixels, under {MIN_COVER_PX} px" in tiny[0].detail
    assert "tiny cover: tiny.flac" in summary.format()
    (only,) = images(tmp_path / "d")
    with Image.open(only) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert pixels.std() > 40 and pixels.max() - pixels.min() > 200  # a gradient, not white


def test_a_tiny_cover_is_taken_when_asked_and_noted(tmp_path, library, taggers):
    summary = build(tmp_path / "d", library, taggers, min_cover_px=1)
    assert not [s for s in summary.skipped if s.reason == TINY_COVER]
    assert len(images(tmp_path / "d")) == 2
    assert summary.cover_notes == [
        ("tiny.flac", "embedded picture: 1 x 1 pixels, under 64 px, taken as asked")
    ]
    assert "Tiny covers taken (1):" in summary.format()


def test_merge_decodes_every_cover_it_takes(tmp_path, library, taggers, capsys):
    from train.dataset.shards import merge_main

    shards = [tmp_path / f"s{i}" for i in range(2)]
    for i, folder in enumerate(shards):
        build(folder, library, taggers, num_shards=2, shard_index=i, min_cover_px=1)
    out = tmp_path / "merged"
    assert merge_main(["--output_dir", str(out), *map(str, shards)]) == 0
    capsys.readouterr()
    shutil.rmtree(out)
    victim = next(p for s in shards for p in (s / "covers").glob("*.png"))
    whole = victim.read_bytes()
    for cut in (len(whole) // 2, len(whole) - 12):  # half of it; only the IEND chunk gone
        victim.write_bytes(whole[:cut])
        assert merge_main(["--output_dir", str(out), *map(str, shards)]) == 1
        err = capsys.readouterr().err
        assert str(victim) in err and "truncated" in err and "rebuild this shard" in err
        assert not out.exists()
    victim.write_bytes(png(Image.new("RGB", (32, 32))))  # whole, but not the build's size
    assert merge_main(["--output_dir", str(out), *map(str, shards)]) == 1
    assert "32 x 32 pixels, not the build's 64 x 64" in capsys.readouterr().err


def test_the_command_takes_tiny_covers_when_asked(tmp_path, library, capsys):
    from train.build_dataset import main, parse_args

    for bad in ("0", "-3", "many"):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(["--audio_dir", str(library), "--output_dir", "x", "--min_cover_px", bad])
        assert exit_info.value.code == 2
        assert "--min_cover_px" in capsys.readouterr().err
    out = tmp_path / "d"
    args = ["--audio_dir", str(library), "--output_dir", str(out), "--resolution", "64"]
    flags = [*args, "--validation_split", "0", "--min_cover_px", "1", "--no_progress"]
    assert main(parse_args(flags)) == 0
    assert len(images(out)) == 2
    assert "Tiny covers taken (1):" in capsys.readouterr().out
