"""Batches across tracks: ``Tagger.tag_songs`` tags several songs in one go, and the dataset
builder's ``--batch_tracks N`` feeds it N tracks at a time. Each song's result must be the one
``tag_patches`` gives it alone, and a batched build must write exactly the serial build's bytes
(rows, order, split, covers, recipe; the same tag cache arrays), with or without decoding workers,
with tracks that carry a genre and tracks whose category the genre tagger infers, and a corrupt
file in the middle of a batch. Real taggers on the CPU, real mp3 files cut from the shared clip.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from albumcover.ear.audio import load_audio
from albumcover.ear.features import song_patches
from albumcover.ear.tagger import Tagger
from tests.music_library import cut_clip, image_bytes, tag_mp3
from tests.train.dataset.test_shards import dataset_files
from train.build_dataset import main, parse_args
from train.dataset.build import build_dataset
from train.dataset.summary import BAD_AUDIO


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


@pytest.mark.parametrize(
    ("dtype", "engine"),
    [(None, "gemm"), (torch.float32, "gemm"), (torch.float32, "onnx")],
    ids=["gemm-default-dtype", "gemm-float32", "onnx-float32"],
)
def test_tag_songs_equals_tag_patches_song_by_song_on_the_cpu_engines(songs, dtype, engine):
    tagger = Tagger.load("MSD_musicnn", "cpu", dtype=dtype, engine=engine)
    assert tagger.engine == engine
    assert [len(s) for s in songs] == [1, 10, 2, 4, 20]
    batched = tagger.tag_songs(songs, top=5)
    assert len(batched) == len(songs)
    for song, result in zip(songs, batched, strict=True):
        alone = tagger.tag_patches(song, top=5)
        # exactly: each patch's front end (gemm) or whole network (onnx) is computed alone,
        # the gemm engine's back end song by song
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


# ---- the dataset builder: --batch_tracks ----

GENRE_PATCHES = 2  # fewer than the longer tracks' patches: the genre tagger hears a spread


@pytest.fixture(scope="module")
def music(tmp_path_factory, clip_path) -> Path:
    """Eight mp3 files of 1 to 4 patches: three albums with a genre tag, tracks without one
    (their category is inferred) between them, and a corrupt file in the middle of an album
    (a cover beside it, so it reaches the decoder and fails there, inside a batch)."""
    root = tmp_path_factory.mktemp("batch_music")
    red, blue = image_bytes((220, 30, 30)), image_bytes((30, 30, 220))
    plan = [
        # (path, seconds, start, genre, album)
        ("a/1.mp3", 4, 8, "Rock", "A"),
        ("a/2.mp3", 10, 2, "", "A"),
        ("b/1.mp3", 7, 14, "", "B"),
        ("b/3.mp3", 13, 0, "Techno", "B"),
        ("c/1.mp3", 4, 20, "", "C"),
        ("c/2.mp3", 9, 5, "Jazz", "C"),
        ("d/1.mp3", 6, 11, "", ""),
    ]
    for i, (path, seconds, start, genre, album) in enumerate(plan):
        text = dict(title=f"Song {i}", artist="Batch Band", date=str(2000 + i))
        text |= {"album": album} if album else {}
        text |= {"genre": genre} if genre else {}
        covers = [(3, red if i % 2 else blue)] if album != "B" else []
        tag_mp3(cut_clip(clip_path, root / path, seconds=seconds, start=start), covers, **text)
    (root / "b" / "folder.jpg").write_bytes(image_bytes((30, 200, 30)))
    (root / "b" / "2.mp3").write_bytes(b"ID3 this is no mp3 at all\n" * 40)  # between b/1, b/3
    return root


class Counting:
    """A real tagger that records the songs per ``tag_songs`` call (and can be killed at one)."""

    def __init__(self, tagger, die_at: int | None = None):
        self.tagger, self.die_at, self.calls = tagger, die_at, []
        self.model_name, self.labels, self.device = tagger.model_name, tagger.labels, tagger.device

    def tag_songs(self, songs, **kwargs):
        if len(self.calls) == self.die_at:
            raise KeyboardInterrupt
        self.calls.append([len(s) for s in songs])
        return self.tagger.tag_songs(songs, **kwargs)

    def tag_patches(self, patches, **kwargs):
        self.calls.append("tag_patches")
        return self.tagger.tag_patches(patches, **kwargs)


def run_build(out: Path, music: Path, taggers, **options):
    options = dict(resolution=64, validation_split=0.4, progress=False, **options)
    options.setdefault("genre_patches", GENRE_PATCHES)
    return build_dataset(
        out, audio_dir=music, tagger=taggers[0], genre_tagger=taggers[1], **options
    )


def cache_arrays(out: Path) -> dict[str, dict[str, np.ndarray]]:
    """The tag cache's arrays per entry (the .npz files themselves carry zip timestamps)."""
    entries = {}
    for path in sorted((out / ".cache" / "tags").glob("*.npz")):
        with np.load(path) as stored:
            entries[path.name] = {k: stored[k] for k in stored.files}
    return entries


def same_cache(a: Path, b: Path) -> bool:
    left, right = cache_arrays(a), cache_arrays(b)
    return left.keys() == right.keys() and all(
        left[n].keys() == right[n].keys()
        and all(np.array_equal(left[n][k], right[n][k]) for k in left[n])
        for n in left
    )


def report(summary, out: Path) -> str:
    return summary.format().replace(str(out), "OUT")


@pytest.fixture(scope="module")
def serial(tmp_path_factory, music, taggers):
    out = tmp_path_factory.mktemp("serial")
    counting = (Counting(taggers[0]), Counting(taggers[1]))
    summary = run_build(out, music, counting)  # the default on a CPU: one track at a time
    assert all(set(c.calls) == {"tag_patches"} for c in counting)
    return out, summary


def test_the_serial_build_is_the_reference(serial, music):
    out, summary = serial
    rows = [
        json.loads(line)
        for split in ("train", "validation")
        for line in (out / split / "metadata.jsonl").read_text().splitlines()
    ]
    assert summary.total_rows == 7 and summary.tagged == 7
    assert [(s.source, s.reason) for s in summary.skipped] == [("b/2.mp3", BAD_AUDIO)]
    assert sum(r["category_inferred"] for r in rows) == 4  # no genre tag: inferred
    assert all(r["category"] for r in rows)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_batched_build_writes_the_serial_bytes(num_workers, serial, music, taggers, tmp_path):
    serial_dir, reference = serial
    counting = (Counting(taggers[0]), Counting(taggers[1]))
    out = tmp_path / "batched"
    summary = run_build(out, music, counting, batch_tracks=3, num_workers=num_workers)
    # the caption tagger heard 3 tracks per call (7 = 3 + 3 + 1; the corrupt one never counts),
    # the genre tagger the tracks without a genre in those batches, at most 2 patches each
    assert counting[0].calls == [[1, 3, 2], [4, 1, 3], [2]]
    assert counting[1].calls == [[2, 2], [1], [2]]
    assert dataset_files(out) == dataset_files(serial_dir)
    assert same_cache(out, serial_dir)
    assert report(summary, out) == report(reference, serial_dir)
    assert (summary.tagged, summary.cached, summary.written) == (7, 0, reference.written)
    assert [(s.source, s.reason, s.detail) for s in summary.skipped] == [
        (s.source, s.reason, s.detail) for s in reference.skipped
    ]
    # a rerun from the cache tags nothing, calls no tagger, rewrites nothing
    again = run_build(out, music, counting, batch_tracks=3, num_workers=num_workers)
    assert (again.tagged, again.cached, again.written) == (0, 7, 0)
    assert len(counting[0].calls) == 3


def test_a_build_killed_mid_batch_resumes_from_the_cache(serial, music, taggers, tmp_path):
    serial_dir, _ = serial
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):  # the caption tagger dies at the second batch
        run_build(out, music, (Counting(taggers[0], die_at=1), taggers[1]), batch_tracks=3)
    assert not (out / "train").exists()
    assert len(cache_arrays(out)) == 3  # the first batch's tracks, cached one by one
    resumed = run_build(out, music, taggers, batch_tracks=3)
    assert (resumed.tagged, resumed.cached) == (4, 3)
    assert dataset_files(out) == dataset_files(serial_dir)
    assert same_cache(out, serial_dir)


def test_tracks_cached_for_captions_only_get_their_genre_in_a_batch(
    serial, music, taggers, tmp_path
):
    # the same library rebuilt with the genre tagger hearing every patch: the caption tags
    # come from the cache (the same name), the genre under a new name: only the genre tagger
    # runs, in batches, and the rows are the serial rebuild's from the same cache
    serial_dir, _ = serial
    out = tmp_path / "regenre"
    shutil.copytree(serial_dir / ".cache", out / ".cache")
    counting = (Counting(taggers[0]), Counting(taggers[1]))
    summary = run_build(out, music, counting, batch_tracks=3, genre_patches=None)
    assert counting[0].calls == [] and counting[1].calls == [[3, 2, 1], [2]]
    shutil.copytree(serial_dir / ".cache", tmp_path / "ref" / ".cache")
    reference = run_build(tmp_path / "ref", music, taggers, genre_patches=None)
    assert summary.tagged == reference.tagged == 4  # the tracks without a genre tag
    assert summary.cached == reference.cached == 3
    assert dataset_files(out) == dataset_files(tmp_path / "ref")
    assert same_cache(out, tmp_path / "ref")


def test_the_batch_size_defaults_to_one_track_on_a_cpu(music, taggers, tmp_path):
    from train.dataset.batching import CUDA_BATCH_TRACKS, default_batch_tracks

    assert (default_batch_tracks("cpu"), default_batch_tracks("cuda")) == (1, CUDA_BATCH_TRACKS)
    assert CUDA_BATCH_TRACKS == 16
    for bad in (0, -2, 2.5, True, "3"):
        with pytest.raises(ValueError, match="batch_tracks must be None or a whole number"):
            run_build(tmp_path / "o", music, taggers, batch_tracks=bad)
    assert not (tmp_path / "o").exists()


def test_taggers_on_cuda_get_batches_of_16_by_default(serial, music, taggers, tmp_path):
    # real CPU taggers that say they are on CUDA: the builder's default follows the device
    serial_dir, _ = serial
    counting = (Counting(taggers[0]), Counting(taggers[1]))
    for proxy in counting:
        proxy.device = torch.device("cuda")
    run_build(tmp_path / "cuda", music, counting)
    assert counting[0].calls == [[1, 3, 2, 4, 1, 3, 2]]  # all 7 tracks in one batch of <= 16
    assert counting[1].calls == [[2, 2, 1, 2]]
    assert dataset_files(tmp_path / "cuda") == dataset_files(serial_dir)


def test_the_cli_builds_in_batches_with_a_worker(serial, music, tmp_path, capsys):
    serial_dir, _ = serial
    out = tmp_path / "cli"
    argv = ["--audio_dir", str(music), "--output_dir", str(out), "--no_progress"]
    argv += ["--resolution", "64", "--validation_split", "0.4"]
    argv += ["--genre_patches", str(GENRE_PATCHES), "--batch_tracks", "3", "--num_workers", "1"]
    args = parse_args(argv)
    assert args.batch_tracks == 3 and parse_args(argv[:-4]).batch_tracks is None
    assert main(args) == 0
    assert "Tagged 7 tracks" in capsys.readouterr().out
    assert dataset_files(out) == dataset_files(serial_dir)
    assert same_cache(out, serial_dir)


def test_cli_refuses_a_device_torch_cannot_use(tmp_path, capsys):
    argv = ["--output_dir", str(tmp_path / "o"), "--audio_dir", str(tmp_path), "--device"]
    for device, message in [("gpu", "invalid device 'gpu'"), ("meta", "unsupported device")]:
        with pytest.raises(SystemExit) as exc:
            parse_args(argv + [device])
        assert exc.value.code == 2 and f"--device: {message}" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exc:
            parse_args(argv + ["cuda"])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "CUDA is not available" in err
    assert parse_args(argv + ["cpu"]).device == "cpu"


@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "must be from 1 to 256, got 0"),
        ("257", "must be from 1 to 256, got 257"),
        ("-3", "must be from 1 to 256, got -3"),
        ("abc", "not an integer (from 1 to 256): 'abc'"),
        ("2.5", "not an integer"),
    ],
)
def test_cli_refuses_bad_batch_sizes_naming_the_flag(value, message, tmp_path, capsys):
    argv = ["--output_dir", str(tmp_path / "o"), "--audio_dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        parse_args(argv + ["--batch_tracks", value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "argument --batch_tracks" in err and message in err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_the_benchmark_refuses_cuda_where_there_is_none():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    command = [sys.executable, "-m", "benchmarks.bench_dataset", "--device", "cuda"]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--device cuda: torch sees no CUDA device here" in done.stderr
