"""train.build_dataset at scale: decoding workers, shards and their merge, a killed build.

Every path must write exactly the dataset a serial build writes (same rows, split and bytes);
shards that do not belong together are refused with a message that says why. Same little
library and real taggers as tests/train/dataset/test_build.py.
"""

import json
import shutil
from pathlib import Path

import pytest

from tests.train.dataset.test_build import build, built, library, run_cli, snapshot, taggers  # noqa: F401
from train.dataset.shards import SHARD_FILE, merge_main, shard_of

K = 3


def dataset_files(folder: Path) -> dict[str, bytes]:
    """Every file of a dataset but its tag cache: rows, images, card."""
    return {k: v[0] for k, v in snapshot(folder).items() if not k.startswith(".cache/")}


def skipped(summary) -> list[tuple[str, str]]:
    # (the details may name objects by address, e.g. PIL's "<_io.BytesIO object at 0x...>")
    return sorted((s.source, s.reason) for s in summary.skipped)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, library, taggers):  # noqa: F811
    root = tmp_path_factory.mktemp("shards")
    folders = [root / f"shard{i}" for i in range(K)]
    summaries = [
        build(folder, library, taggers, num_shards=K, shard_index=i)
        for i, folder in enumerate(folders)
    ]
    return folders, summaries


def shard_rows(folder: Path) -> list[dict]:
    return json.loads((folder / SHARD_FILE).read_text())["rows"]


def test_workers_build_the_serial_dataset(built, library, taggers, tmp_path):  # noqa: F811
    serial_dir, serial = built
    summary = build(tmp_path / "w", library, taggers, num_workers=2)
    assert (summary.tagged, summary.cached) == (serial.tagged, 0)
    assert skipped(summary) == skipped(serial)  # broken and silent files, reported the same
    assert dataset_files(tmp_path / "w") == dataset_files(serial_dir)
    # and a rerun with workers tags nothing and rewrites nothing
    again = build(tmp_path / "w", library, taggers, num_workers=2)
    assert (again.tagged, again.cached, again.written) == (0, serial.tagged, 0)


def test_shards_hold_whole_albums_and_merge_into_the_serial_dataset(
    shards,
    built,  # noqa: F811
    tmp_path,
    capsys,
):
    folders, summaries = shards
    serial_dir, serial = built
    albums = [{(r["artist"], r["album"]) for r in shard_rows(f)} for f in folders]
    assert sum(bool(a) for a in albums) >= 2  # the library really is spread
    for i in range(K):
        for j in range(i + 1, K):
            assert not albums[i] & albums[j]  # an album lives in one shard only
    sources = sorted(r["source"] for f in folders for r in shard_rows(f))
    serial_rows = [
        json.loads(line)
        for split in ("train", "validation")
        for line in (serial_dir / split / "metadata.jsonl").read_text().splitlines()
    ]
    assert sources == sorted(r["source"] for r in serial_rows)
    assert sum(s.tagged for s in summaries) == serial.tagged
    for i, summary in enumerate(summaries):
        assert f"Shard {i} of {K}" in summary.format()

    out = tmp_path / "merged"
    # the order of the folders on the command line does not matter
    assert merge_main(["--output_dir", str(out), *map(str, reversed(folders))]) == 0
    assert "Dataset in" in capsys.readouterr().out
    assert dataset_files(out) == dataset_files(serial_dir)
    before = snapshot(out)
    assert merge_main(["--output_dir", str(out), *map(str, folders)]) == 0
    assert snapshot(out) == before  # a second merge rewrites nothing


def test_shard_assignment_is_stable_and_uses_every_shard():
    keys = [("album", "artist", f"album {i}") for i in range(200)]
    assert [shard_of(k, 4) for k in keys] == [shard_of(k, 4) for k in keys]
    assert shard_of(("album", "fay", "folder album"), 3) == 2  # fixed: no per-run salt
    counts = [sum(shard_of(k, 4) == i for k in keys) for i in range(4)]
    assert min(counts) > 30


def edit_shard(folder: Path, **changes) -> None:
    path = folder / SHARD_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_merge_refuses_shards_that_do_not_belong_together(
    shards,
    library,  # noqa: F811
    taggers,  # noqa: F811
    tmp_path,
    capsys,
):
    folders, _ = shards
    out = tmp_path / "merged"

    def refused(*shard_dirs) -> str:
        code = merge_main(["--output_dir", str(out), *map(str, shard_dirs)])
        assert code == 1 and not out.exists()  # nothing written
        return capsys.readouterr().err

    assert "missing shard(s) 2 of 3" in refused(*folders[:2])
    assert "shard 0 given twice" in refused(folders[0], folders[0], *folders[1:])
    message = refused(*folders, tmp_path)  # e.g. a shard whose build was killed
    assert "no shard.json" in message and "has not finished" in message

    # a copy of shard 0 passed off as shard 1: its tracks would appear twice
    fake = tmp_path / "fake"
    shutil.copytree(folders[0], fake)
    edit_shard(fake, shard_index=1)
    message = refused(folders[0], fake, folders[2])
    assert "overlapping shards" in message and str(fake) in message

    # shard 1 rebuilt at another resolution (from its own tag cache)
    other = tmp_path / "other"
    shutil.copytree(folders[1], other)
    summary = build(other, library, taggers, num_shards=K, shard_index=1, resolution=32)
    assert summary.tagged == 0
    message = refused(folders[0], other, folders[2])
    assert "different options" in message and "resolution=32 vs 64" in message

    # a shard of a 4-way build, and one of another library
    edit_shard(fake, shard_index=1, num_shards=4)
    assert "num_shards 4" in refused(folders[0], fake, folders[2])
    edit_shard(fake, num_shards=K, library="0123456789abcdef", rows=[])
    assert "library '0123456789abcdef'" in refused(folders[0], fake, folders[2])

    # a shard whose cover image went missing, and one whose manifest is garbage
    shutil.rmtree(fake)
    shutil.copytree(folders[0], fake)
    rows = shard_rows(fake)
    if rows:
        (fake / "covers" / rows[0]["file_name"]).unlink()
        assert "is missing; rebuild this shard" in refused(fake, *folders[1:])
    (fake / SHARD_FILE).write_text("{not json")
    assert "unreadable shard manifest" in refused(fake, *folders[1:])


class DiesAfter:
    """A tagger that is killed (KeyboardInterrupt) when asked for its (n + 1)-th track."""

    def __init__(self, tagger, n: int):
        self.tagger, self.n, self.calls = tagger, n, 0
        self.model_name, self.labels = tagger.model_name, tagger.labels

    def tag_patches(self, patches, **kwargs):
        if self.calls == self.n:
            raise KeyboardInterrupt
        self.calls += 1
        return self.tagger.tag_patches(patches, **kwargs)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_killed_build_resumes(num_workers, built, library, taggers, tmp_path):  # noqa: F811
    serial_dir, serial = built
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        build(out, library, (DiesAfter(taggers[0], 3), taggers[1]), num_workers=num_workers)
    assert not (out / "train").exists()  # rows are written at the end, all at once
    resumed = build(out, library, taggers, num_workers=num_workers)
    assert (resumed.tagged, resumed.cached) == (serial.tagged - 3, 3)
    assert dataset_files(out) == dataset_files(serial_dir)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num_workers", "-1"], "--num_workers must be 0 or more"),
        (["--num_shards", "0"], "--num_shards must be at least 1"),
        (["--num_shards", "3"], "--num_shards needs --shard_index"),
        (["--num_shards", "3", "--shard_index", "3"], "--shard_index must be in [0, 2]"),
        (["--shard_index", "1"], "--shard_index must be in [0, 0]"),
        (["--num_shards", "2", "--shard_index", "0", "--push_to_hub"], "merge the shards"),
    ],
)
def test_cli_rejects_impossible_scale_flags(flags, message, tmp_path, capsys):
    code, err = run_cli(
        ["--output_dir", str(tmp_path / "o"), "--audio_dir", str(tmp_path)] + flags, capsys
    )
    assert code == 2 and message in err


def test_merge_cli_needs_shards(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        merge_main(["--output_dir", str(tmp_path / "o")])
    assert exc.value.code == 2 and "shards" in capsys.readouterr().err


def test_merge_is_a_subcommand_of_the_builder(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    cmd = [
        sys.executable,
        "-m",
        "train.build_dataset",
        "merge",
        "--output_dir",
        str(tmp_path / "o"),
    ]
    done = subprocess.run(cmd + [str(tmp_path)], cwd=root, capture_output=True, text=True)
    assert done.returncode == 1 and "no shard.json" in done.stderr
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    assert done.returncode == 2 and "shards" in done.stderr


def test_an_empty_shard_is_a_shard_not_an_error(tmp_path, capsys):
    from train.build_dataset import main, parse_args

    music = tmp_path / "music"
    music.mkdir()
    common = ["--audio_dir", str(music), "--no_progress"]
    # a whole build with no usable track is an error ...
    assert main(parse_args(common + ["--output_dir", str(tmp_path / "full")])) == 1
    assert "no usable track" in capsys.readouterr().err
    # ... but one shard of a big build may hold no album: it still says it is done
    out = tmp_path / "shard"
    argv = common + ["--output_dir", str(out), "--num_shards", "4", "--shard_index", "3"]
    assert main(parse_args(argv)) == 0
    assert "Shard 3 of 4" in capsys.readouterr().out
    assert json.loads((out / SHARD_FILE).read_text())["rows"] == []
