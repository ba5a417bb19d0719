"""The genre tagger hears the recipe's ``genre_patches`` patches spread over a song: the rule is
data in the caption recipe (the builder writes it, the app and CLI read it), the tag cache keeps
results heard differently apart, and the category matches the one from every patch."""

import json

import numpy as np
import pytest
import torch

from albumcover.ear.audio import load_audio
from albumcover.ear.features import song_patches, spread_patches
from albumcover.ear.tagger import Tagger
from albumcover.pipeline import describe_patches, describe_song
from albumcover.prompts import SongInfo, infer_category
from albumcover.recipe import (
    DEFAULT_RECIPE,
    GENRE_PATCHES,
    RECIPE_FILE,
    CaptionRecipe,
    RecipeError,
    read_recipe,
)
from tests.music_library import cut_clip, image_bytes, tag_mp3
from train.build_dataset import main as build_main
from train.build_dataset import parse_args

SONG = SongInfo(title="Night Drive", artist="Ana", date="2004")


@pytest.fixture(scope="module")
def taggers():
    return (
        Tagger.load("MTT_musicnn", "cpu", dtype=torch.float32),
        Tagger.load("MSD_musicnn", "cpu", dtype=torch.float32),
    )


def test_spread_patches_picks_the_centres_of_equal_stretches():
    patches = np.arange(60, dtype=np.float32)[:, None, None] * np.ones((1, 187, 96), np.float32)
    picked = spread_patches(patches, 10)
    assert picked.shape == (10, 187, 96)
    assert picked[:, 0, 0].tolist() == [3, 9, 15, 21, 27, 33, 39, 45, 51, 57]
    assert spread_patches(patches, 7)[:, 0, 0].tolist() == [4, 12, 21, 30, 38, 47, 55]
    ten = patches[:10]
    assert spread_patches(ten, 10) is ten  # no more patches than asked for: the same array
    assert spread_patches(patches[:4], 10).shape[0] == 4  # short songs: every patch
    assert spread_patches(patches, None).shape[0] == 60
    for bad in (0, -1, 2.5, True, "10"):
        with pytest.raises(ValueError, match="count must be None or a whole number"):
            spread_patches(patches, bad)


def test_the_recipe_carries_the_rule_and_old_recipes_keep_theirs(tmp_path):
    assert DEFAULT_RECIPE.genre_patches == GENRE_PATCHES == 10
    again = CaptionRecipe.from_json(CaptionRecipe(genre_patches=4).to_json())
    assert again.genre_patches == 4
    assert (
        CaptionRecipe.from_json(CaptionRecipe(genre_patches=None).to_json()).genre_patches is None
    )
    # a recipe written before the field existed (format 1): its genre tagger heard every patch
    old = json.loads(DEFAULT_RECIPE.to_json())
    del old["genre_patches"]
    old["format"] = 1
    (tmp_path / RECIPE_FILE).write_text(json.dumps(old))
    assert read_recipe(tmp_path).genre_patches is None
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(RecipeError, match="genre_patches must be None or a whole number"):
            CaptionRecipe(genre_patches=bad)
    data = json.loads(DEFAULT_RECIPE.to_json())
    data["genre_patches"] = "all"
    with pytest.raises(RecipeError, match="genre_patches"):
        CaptionRecipe.from_json(json.dumps(data), where="model/recipe.json")


def test_a_song_is_categorised_from_the_recipes_patches(taggers, clip_path):
    tagger, genre = taggers
    song = np.tile(load_audio(clip_path), 6)  # a 3-minute song: 60 patches
    patches = song_patches(song)
    assert patches.shape[0] == 60
    spread = describe_patches(patches, SONG, tagger, genre)
    every = describe_patches(patches, SONG, tagger, genre, recipe=CaptionRecipe(genre_patches=None))
    assert spread.genre.taggram.shape == (10, 50) and every.genre.taggram.shape == (60, 50)
    assert spread.tag_names == every.tag_names  # the caption tagger hears the whole song either way
    # the same category, and the genre scores close, from a sixth of the patches
    assert spread.category == every.category == infer_category(every.genre.scores) != ""
    top = sorted(every.genre.scores, key=every.genre.scores.get, reverse=True)[:3]
    assert sorted(spread.genre.scores, key=spread.genre.scores.get, reverse=True)[:3] == top
    # measured 0.046 at most (blues 0.401 vs 0.355); the song is the clip 6 times, unaligned
    assert max(abs(spread.genre.scores[k] - every.genre.scores[k]) for k in top) < 0.06
    # describe_song (the app's and the CLI's path) follows the same recipe
    assert describe_song(song, SONG, tagger, genre).prompt == spread.prompt
    # a clip no longer than the sample: every patch, so nothing changes for 30 s previews
    clip = song_patches(load_audio(clip_path))
    assert clip.shape[0] <= GENRE_PATCHES
    short = describe_patches(clip, SONG, tagger, genre)
    assert np.array_equal(short.genre.taggram, genre.tag_patches(clip).taggram)


@pytest.fixture
def library(tmp_path, clip_path):
    track = cut_clip(clip_path, tmp_path / "music" / "a.mp3")
    tag_mp3(
        track,
        [(3, image_bytes((20, 40, 200)))],
        album="A",
        title="Night Drive",
        artist="Ana",
        date="2004",
    )
    return tmp_path / "music"


def build(library, out, *flags) -> int:
    args = ["--audio_dir", str(library), "--output_dir", str(out), "--resolution", "32"]
    return build_main(parse_args([*args, "--validation_split", "0", "--no_progress", *flags]))


def cache_keys(out) -> set[str]:
    (entry,) = (out / ".cache" / "tags").glob("*.npz")
    with np.load(entry) as stored:
        return set(stored.files)


def test_the_builder_records_the_rule_and_caches_each_rule_apart(library, tmp_path):
    out = tmp_path / "dataset"
    assert build(library, out) == 0
    assert read_recipe(out).genre_patches == GENRE_PATCHES
    keys = cache_keys(out)
    assert {"MTT_musicnn.scores", f"MSD_musicnn.spread{GENRE_PATCHES}.scores"} <= keys
    assert "MSD_musicnn.scores" not in keys
    # a rebuild that hears every patch must not replay the spread result: its own cache entry
    assert build(library, out, "--genre_patches", "0") == 0
    assert read_recipe(out).genre_patches is None
    assert {"MSD_musicnn.scores", f"MSD_musicnn.spread{GENRE_PATCHES}.scores"} <= cache_keys(out)


@pytest.mark.parametrize("value", ["-1", "ten", "2.5", ""])
def test_the_builder_refuses_a_bad_genre_patches_flag(value, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(["--audio_dir", "x", "--output_dir", "y", "--genre_patches", value])
    assert stopped.value.code == 2
    assert "--genre_patches" in capsys.readouterr().err
