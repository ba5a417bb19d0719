"""The TF tensor-bundle reader: the four real musicnn checkpoints, hand-built tables, damage."""

import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from albumcover.ear.tfbundle import (
    CheckpointError,
    _snappy_decompress,
    bundle_paths,
    crc32c,
    mask_crc,
    read_bundle,
    read_checkpoint,
    read_index,
)
from albumcover.ear.weights import installed_weights_dir

MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")

# Every model variable (optimizer state aside) with its TF shape, as models.py creates them.
MUSICNN_SHAPES = {
    "conv2d/kernel": (7, 38, 1, 204),
    "conv2d_1/kernel": (7, 67, 1, 204),
    "conv2d_2/kernel": (128, 1, 1, 51),
    "conv2d_3/kernel": (64, 1, 1, 51),
    "conv2d_4/kernel": (32, 1, 1, 51),
    "conv2d_5/kernel": (7, 561, 1, 64),
    "conv2d_6/kernel": (7, 64, 1, 64),
    "conv2d_7/kernel": (7, 64, 1, 64),
    "dense/kernel": (1506, 200),
    "dense_1/kernel": (200, 50),
}
MUSICNN_SHAPES.update({k.replace("kernel", "bias"): (v[-1],) for k, v in MUSICNN_SHAPES.items()})
for i, n in enumerate([1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200]):
    scope = f"batch_normalization_{i}" if i else "batch_normalization"
    for var in ("beta", "gamma", "moving_mean", "moving_variance"):
        MUSICNN_SHAPES[f"{scope}/{var}"] = (n,)

VGG_SHAPES = {"dense/kernel": (256, 50), "dense/bias": (50,)}
for i in range(5):
    VGG_SHAPES[f"{i + 1}CNN/kernel"] = (3, 3, 1 if i == 0 else 128, 128)
    VGG_SHAPES[f"{i + 1}CNN/bias"] = (128,)
for i, n in enumerate([1, 128, 128, 128, 128, 128]):
    scope = f"batch_normalization_{i}" if i else "batch_normalization"
    for var in ("beta", "gamma", "moving_mean", "moving_variance"):
        VGG_SHAPES[f"{scope}/{var}"] = (n,)


@pytest.fixture(scope="module")
def weights_dir() -> Path:
    folder = installed_weights_dir()
    if folder is None:
        pytest.fail("the musicnn package is not installed (make setup installs it --no-deps)")
    return folder


# --- an independent writer for LevelDB tables and bundle entries --------------------------------


def crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, wire: int, payload: bytes | int) -> bytes:
    tag = varint(number << 3 | wire)
    if wire == 0:
        return tag + varint(payload)
    if wire == 5:
        return tag + payload.to_bytes(4, "little")
    return tag + varint(len(payload)) + payload


def entry_proto(dtype: int, shape, offset: int, data: bytes, **extra) -> bytes:
    dims = b"".join(field(2, 2, field(1, 0, d)) for d in shape)
    crc = extra.get("crc", mask_crc(crc32c_bitwise(data)))
    out = field(1, 0, dtype) + field(2, 2, dims) + field(4, 0, offset)
    out += field(5, 0, extra.get("size", len(data))) + field(6, 5, crc)
    if extra.get("slices"):
        out += field(7, 2, b"")
    return out


def block(entries, restart_interval=2) -> bytes:
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        previous = key
    for r in restarts or [0]:
        out += r.to_bytes(4, "little")
    return bytes(out + len(restarts or [0]).to_bytes(4, "little"))


def snappy_literal(raw: bytes) -> bytes:
    # a valid snappy stream: the length, then the whole input as literals (<= 256 bytes each)
    out = bytearray(varint(len(raw)))
    for start in range(0, len(raw), 256):
        piece = raw[start : start + 256]
        out += bytes([60 << 2, len(piece) - 1]) + piece
    return bytes(out)


def table(entries, per_block=3, snappy=False) -> bytes:
    out, index = bytearray(), []

    def put(raw: bytes, compress: bool) -> bytes:
        payload, kind = (snappy_literal(raw), 1) if compress else (raw, 0)
        handle = varint(len(out)) + varint(len(payload))
        out.extend(payload + bytes([kind]))
        out.extend(mask_crc(crc32c_bitwise(payload + bytes([kind]))).to_bytes(4, "little"))
        return handle

    for start in range(0, len(entries), per_block):
        chunk = entries[start : start + per_block]
        index.append((chunk[-1][0], put(block(chunk), snappy)))
    meta = put(block([]), False)
    index_handle = put(block(index, restart_interval=1), False)
    footer = (meta + index_handle).ljust(40, b"\0") + (0xDB4775248B80FB57).to_bytes(8, "little")
    return bytes(out + footer)


def make_bundle(tensors: dict[str, np.ndarray], *, snappy=False, **entry_extra):
    codes = {"float32": 1, "float64": 2, "int32": 3, "int64": 9, "float16": 19, "uint8": 4}
    data, entries = bytearray(), []
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name]).astype(tensors[name].dtype.newbyteorder("<"))
        raw = raw.tobytes()
        proto = entry_proto(
            codes[str(tensors[name].dtype)], tensors[name].shape, len(data), raw, **entry_extra
        )
        entries.append((name.encode(), proto))
        data += raw
    header = field(1, 0, 1) + field(3, 2, field(1, 0, 1))
    return table([(b"", header)] + entries, snappy=snappy), bytes(data)


SAMPLE = {
    "a/kernel": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "a/kernel/Adam": np.full((2, 3), -1.5, dtype=np.float32),
    "b/step": np.array([1, -2, 3, 1 << 40], dtype=np.int64),
    "c/scalar": np.array(np.pi, dtype=np.float64),
    "d/half": np.linspace(-1, 1, 5).astype(np.float16),
    "e/bytes": np.arange(300, dtype=np.int64).astype(np.uint8).reshape(10, 30),
    "f/big": np.random.default_rng(0).standard_normal((64, 300)).astype(np.float32),
}


# --- checksums -----------------------------------------------------------------------------------


def test_crc32c_matches_the_standard_check_value_and_a_bitwise_implementation():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C catalogue's check value
    assert crc32c(b"") == 0
    data = np.random.default_rng(1).integers(0, 256, 70_001, dtype=np.uint8).tobytes()
    assert crc32c(data) == crc32c_bitwise(data)  # the vectorised path (>= 16 KiB)
    assert crc32c(data[:999]) == crc32c_bitwise(data[:999])
    assert crc32c(data) != zlib.crc32(data)  # Castagnoli, not the zip polynomial


def test_mask_crc_is_leveldbs_rotate_and_add():
    crc = 0x12345678
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert mask_crc(crc) == (rotated + 0xA282EAD8) & 0xFFFFFFFF
    assert mask_crc(crc) != crc


def test_snappy_literals_and_overlapping_copies():
    # literal "abcd", copy-1 (length 4, offset 4), copy-2 (length 5, offset 1: overlapping)
    stream = varint(13) + bytes([3 << 2]) + b"abcd" + bytes([0 << 2 | 1, 4])
    stream += bytes([(5 - 1) << 2 | 2]) + (1).to_bytes(2, "little")
    assert _snappy_decompress(stream, "t") == b"abcdabcdddddd"
    with pytest.raises(CheckpointError, match="back-reference"):
        _snappy_decompress(varint(4) + bytes([0 << 2 | 1, 9]), "t")
    with pytest.raises(CheckpointError, match="decodes to"):
        _snappy_decompress(varint(9) + bytes([3 << 2]) + b"abcd", "t")
    for truncated in (stream[:-1], stream[:7], varint(4) + bytes([61 << 2, 1])):
        with pytest.raises(CheckpointError, match="truncated snappy block"):
            _snappy_decompress(truncated, "t")


# --- hand-built bundles --------------------------------------------------------------------------


@pytest.mark.parametrize("snappy", [False, True], ids=["plain", "snappy"])
def test_hand_built_bundle_round_trips_every_dtype(snappy):
    index, data = make_bundle(SAMPLE, snappy=snappy)
    tensors = read_bundle(index, data)
    assert list(tensors) == sorted(SAMPLE)
    for name, expected in SAMPLE.items():
        assert tensors[name].dtype == expected.dtype, name
        assert tensors[name].shape == expected.shape, name
        np.testing.assert_array_equal(tensors[name], expected)
        assert tensors[name].flags.writeable


def test_index_entries_carry_offsets_sizes_and_checksums():
    index, _ = make_bundle(SAMPLE)
    entries = read_index(index)
    assert entries["b/step"].dtype == np.int64
    assert entries["b/step"].size == 32
    assert entries["c/scalar"].shape == ()
    assert entries["a/kernel/Adam"].offset == entries["a/kernel"].offset + 24


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"slices": True}, "slices"),
        ({"size": 5}, "needs"),
        ({"crc": 12345}, "checksum mismatch for tensor"),
    ],
)
def test_inconsistent_entries_are_rejected(extra, message):
    index, data = make_bundle({"x": np.ones(3, np.float32)}, **extra)
    with pytest.raises(CheckpointError, match=message):
        read_bundle(index, data, index_name="idx", data_name="dat")


def test_unsupported_dtype_and_multiple_shards_are_rejected():
    bad_dtype = field(1, 0, 7) + field(2, 2, b"")  # DT_STRING
    header = field(1, 0, 1)
    with pytest.raises(CheckpointError, match="dtype code 7"):
        read_index(table([(b"", header), (b"s", bad_dtype)]))
    with pytest.raises(CheckpointError, match="2 data shards"):
        read_index(table([(b"", field(1, 0, 2))]))
    with pytest.raises(CheckpointError, match="no bundle header"):
        read_index(table([(b"x", bad_dtype)]))


# --- the real checkpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_reads_every_musicnn_checkpoint(weights_dir, model):
    tensors = read_checkpoint(weights_dir / model)
    expected = MUSICNN_SHAPES if "musicnn" in model else VGG_SHAPES
    model_vars = {
        name: array
        for name, array in tensors.items()
        if not name.endswith(("/Adam", "/Adam_1")) and name not in ("beta1_power", "beta2_power")
    }
    assert {name: a.shape for name, a in model_vars.items()} == expected
    assert all(a.dtype == np.float32 for a in tensors.values())
    for name, array in model_vars.items():  # Adam slots for each trainable variable
        if "/moving_" in name:
            continue
        assert tensors[f"{name}/Adam"].shape == tensors[f"{name}/Adam_1"].shape == array.shape
    assert tensors["beta1_power"].shape == ()
    # trained, not initial values: moving variances moved off 1, kernels are not all zero
    assert not np.allclose(tensors["batch_normalization_1/moving_variance"], 1.0)
    assert np.all(tensors["batch_normalization_1/moving_variance"] > 0)
    assert np.abs(tensors["dense/kernel"]).max() > 0


def test_prefix_and_directory_forms(tmp_path, weights_dir):
    assert bundle_paths(weights_dir / "MTT_vgg") == (
        weights_dir / "MTT_vgg" / ".index",
        weights_dir / "MTT_vgg" / ".data-00000-of-00001",
    )
    assert bundle_paths(tmp_path / "model.ckpt") == (
        tmp_path / "model.ckpt.index",
        tmp_path / "model.ckpt.data-00000-of-00001",
    )
    index, data = make_bundle(SAMPLE)
    (tmp_path / "model.ckpt.index").write_bytes(index)
    (tmp_path / "model.ckpt.data-00000-of-00001").write_bytes(data)
    assert sorted(read_checkpoint(str(tmp_path / "model.ckpt"))) == sorted(SAMPLE)


# --- damaged files -------------------------------------------------------------------------------


@pytest.fixture
def vgg_copy(tmp_path, weights_dir) -> Path:
    folder = tmp_path / "MTT_vgg"
    folder.mkdir()
    for name in (".index", ".data-00000-of-00001"):
        shutil.copyfile(weights_dir / "MTT_vgg" / name, folder / name)
    return folder


def _damage(path: Path, *, truncate: int | None = None, flip: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    if truncate is not None:
        data = data[:truncate]
    if flip is not None:
        data[flip] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "file, damage, message",
    [
        (".index", {"truncate": -10}, "bad magic number"),
        (".index", {"truncate": 20}, "too short"),
        (".index", {"truncate": 0}, "too short"),
        (".index", {"flip": 40}, "checksum mismatch in block"),
        (".index", {"flip": 1500}, "checksum mismatch in block"),
        (".index", {"flip": -1}, "bad magic number"),
        (".data-00000-of-00001", {"truncate": -100}, "truncated"),
        (".data-00000-of-00001", {"flip": 1_000_000}, "checksum mismatch for tensor"),
    ],
)
def test_damaged_checkpoint_files_raise_naming_the_file(vgg_copy, file, damage, message):
    path = vgg_copy / file
    if damage.get("truncate") is not None and damage["truncate"] < 0:
        damage = {"truncate": path.stat().st_size + damage["truncate"]}
    if damage.get("flip") is not None and damage["flip"] < 0:
        damage = {"flip": path.stat().st_size + damage["flip"]}
    _damage(path, **damage)
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(vgg_copy)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("missing", [".index", ".data-00000-of-00001"])
def test_missing_checkpoint_file_names_it(vgg_copy, missing):
    (vgg_copy / missing).unlink()
    with pytest.raises(CheckpointError, match="cannot read checkpoint file") as info:
        read_checkpoint(vgg_copy)
    assert str(vgg_copy / missing) in str(info.value)


def test_a_non_table_file_is_not_mistaken_for_an_index(tmp_path):
    (tmp_path / ".index").write_bytes(b"not a table" * 10)
    (tmp_path / ".data-00000-of-00001").write_bytes(b"")
    with pytest.raises(CheckpointError, match="bad magic number"):
        read_checkpoint(tmp_path)
