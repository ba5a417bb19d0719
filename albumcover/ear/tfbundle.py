"""Read TensorFlow "tensor bundle" checkpoints (``PREFIX.index`` + ``PREFIX.data-*``) with NumPy.

The format, as written by TensorFlow's ``BundleWriter`` (``tensor_bundle.cc``):

* ``PREFIX.index`` is a LevelDB-format table (``table_builder.cc``): data blocks of
  prefix-compressed key/value entries, an index block pointing at them, and a 48-byte footer
  ending in a magic number.  Every block is followed by a one-byte compression type and a
  masked CRC-32C of the block plus that byte.
* The value under the empty key is a ``BundleHeaderProto``; every other key is a variable name
  whose value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size, masked CRC-32C).
* ``PREFIX.data-SSSSS-of-NNNNN`` holds the raw little-endian tensor bytes.

The protobuf messages are decoded by hand (a varint reader and the five wire types), so neither
TensorFlow nor protobuf is needed.  Everything is checked: sizes, block and tensor checksums,
shapes against byte counts; any inconsistency raises :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # compression type byte + fixed32 masked crc
HEADER_KEY = b""

# tensorflow/core/framework/types.proto DataType -> NumPy dtype (plain numeric types only;
# strings, resources and variants have a different on-disk encoding and never occur here).
_DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    17: np.uint16,
    19: np.float16,
    22: np.uint32,
    23: np.uint64,
}


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or uses an unsupported feature."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shard (a decoded ``BundleEntryProto``)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored


# --- CRC-32C (Castagnoli), as LevelDB and TensorFlow use it -------------------------------------


def _make_crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table[i] = crc
    return table


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_LIST = [int(v) for v in _CRC_TABLE]


def _crc_update(reg: int, data: bytes | memoryview) -> int:
    table = _CRC_TABLE_LIST
    for byte in bytes(data):
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    return reg


@lru_cache(maxsize=16)
def _zero_shift_tables(length: int) -> tuple[list[int], ...]:
    # Feeding `length` zero bytes is a linear map on the 32-bit register; tabulate it per byte of
    # the register so that map costs four lookups.  Run it on all 32 basis vectors at once.
    basis = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    reg = basis.copy()
    for _ in range(length):
        reg = _CRC_TABLE[reg & 0xFF] ^ (reg >> 8)
    images = [int(v) for v in reg]
    tables = []
    for byte_index in range(4):
        table = []
        for value in range(256):
            out = 0
            for bit in range(8):
                if value >> bit & 1:
                    out ^= images[8 * byte_index + bit]
            table.append(out)
        tables.append(table)
    return tuple(tables)


def crc32c(data: bytes | memoryview | np.ndarray) -> int:
    """CRC-32C of ``data`` (unmasked).

    Large inputs are split into equal chunks whose raw CRCs are computed side by side with NumPy
    (one table lookup per byte column); since the CRC register update is affine, the chunk CRCs are
    then folded together with a precomputed "advance over n zero bytes" map.
    """
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    reg = 0xFFFFFFFF
    if len(buf) >= 1 << 14:
        # Cost ~ chunk NumPy steps + n / chunk Python folds: balance them near sqrt(n / 4), in
        # powers of two so the zero-shift tables are reused across tensors.
        chunk = 1 << min(13, max(8, round(np.log2(np.sqrt(len(buf) / 4)))))
        lanes = len(buf) // chunk
        columns = np.ascontiguousarray(buf[: lanes * chunk].reshape(lanes, chunk).T)
        partial = np.zeros(lanes, dtype=np.uint32)
        for column in columns:
            partial = _CRC_TABLE[(partial ^ column) & 0xFF] ^ (partial >> 8)
        t0, t1, t2, t3 = _zero_shift_tables(chunk)
        for value in partial.tolist():
            reg = (
                t0[reg & 0xFF] ^ t1[(reg >> 8) & 0xFF] ^ t2[(reg >> 16) & 0xFF] ^ t3[reg >> 24]
            ) ^ value
        buf = buf[lanes * chunk :]
    reg = _crc_update(reg, buf.tobytes())
    return reg ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """LevelDB's CRC masking (rotate right by 15, add a constant), used for stored checksums."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- protobuf wire format -------------------------------------------------------------------------


def _read_varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError(f"{where}: truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError(f"{where}: varint longer than 10 bytes")


def _parse_fields(buf: bytes, where: str) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a serialised message."""
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos, where)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos, where)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise CheckpointError(f"{where}: truncated fixed64 field {field}")
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(buf, pos, where)
            if pos + length > len(buf):
                raise CheckpointError(f"{where}: truncated length-delimited field {field}")
            value = bytes(buf[pos : pos + length])
            pos += length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise CheckpointError(f"{where}: truncated fixed32 field {field}")
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise CheckpointError(f"{where}: unsupported protobuf wire type {wire}")
        yield field, wire, value


def _parse_shape(buf: bytes, where: str) -> tuple[int, ...]:
    # TensorShapeProto: repeated Dim dim = 2 (Dim: int64 size = 1, string name = 2);
    # bool unknown_rank = 3.
    dims = []
    for field, wire, value in _parse_fields(buf, where):
        if field == 2 and wire == 2:
            size = 0
            for dim_field, dim_wire, dim_value in _parse_fields(value, where):
                if dim_field == 1 and dim_wire == 0:
                    size = dim_value
            if size >= 1 << 63:  # int64 -1 means "unknown"
                raise CheckpointError(f"{where}: shape with an unknown dimension")
            dims.append(size)
        elif field == 3 and wire == 0 and value:
            raise CheckpointError(f"{where}: shape of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes, where: str) -> TensorEntry:
    # BundleEntryProto: dtype=1, shape=2, shard_id=3, offset=4, size=5, crc32c=6 (fixed32),
    # slices=7 (partitioned variables, which the musicnn checkpoints do not use).
    fields: dict[str, int | tuple[int, ...]] = {
        "dtype": 0,
        "shape": (),
        "shard_id": 0,
        "offset": 0,
        "size": 0,
        "crc32c": 0,
    }
    for field, wire, value in _parse_fields(buf, where):
        if field == 1 and wire == 0:
            fields["dtype"] = value
        elif field == 2 and wire == 2:
            fields["shape"] = _parse_shape(value, where)
        elif field == 3 and wire == 0:
            fields["shard_id"] = value
        elif field == 4 and wire == 0:
            fields["offset"] = value
        elif field == 5 and wire == 0:
            fields["size"] = value
        elif field == 6 and wire == 5:
            fields["crc32c"] = value
        elif field == 7:
            raise CheckpointError(f"{where}: tensor {name!r} is stored as slices (unsupported)")
    dtype_code = fields["dtype"]
    if dtype_code not in _DTYPES:
        raise CheckpointError(f"{where}: tensor {name!r} has unsupported dtype code {dtype_code}")
    return TensorEntry(
        name=name,
        dtype=np.dtype(_DTYPES[dtype_code]),
        shape=fields["shape"],
        shard_id=fields["shard_id"],
        offset=fields["offset"],
        size=fields["size"],
        crc32c=fields["crc32c"],
    )


# --- LevelDB table --------------------------------------------------------------------------------


def _snappy_decompress(data: bytes, where: str) -> bytes:
    # Snappy's raw format: a varint length, then literal and back-reference ("copy") elements.
    expected, pos = _read_varint(data, 0, where)
    out = bytearray()

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise CheckpointError(f"{where}: truncated snappy block")
        pos += n
        return data[pos - n : pos]

    while pos < len(data):
        tag = take(1)[0]
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:  # 60..63: the length follows in 1..4 bytes
                length = int.from_bytes(take(length - 59), "little")
            out += take(length + 1)
            continue
        if kind == 1:
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | take(1)[0]
        else:
            length = (tag >> 2) + 1
            offset = int.from_bytes(take(2 if kind == 2 else 4), "little")
        if offset == 0 or offset > len(out):
            raise CheckpointError(f"{where}: bad snappy back-reference")
        for _ in range(length):  # byte by byte: a copy may overlap its own output
            out.append(out[-offset])
    if len(out) != expected:
        raise CheckpointError(f"{where}: snappy block decodes to {len(out)} bytes, not {expected}")
    return bytes(out)


def _read_block(table: bytes, offset: int, size: int, where: str) -> bytes:
    end = offset + size + BLOCK_TRAILER_SIZE
    if end > len(table):
        raise CheckpointError(f"{where}: block at {offset} (+{size}) runs past the end of the file")
    contents = table[offset : offset + size]
    kind = table[offset + size]
    stored = int.from_bytes(table[offset + size + 1 : end], "little")
    if mask_crc(crc32c(table[offset : offset + size + 1])) != stored:
        raise CheckpointError(f"{where}: checksum mismatch in block at offset {offset}")
    if kind == 0:
        return contents
    if kind == 1:
        return _snappy_decompress(contents, where)
    raise CheckpointError(f"{where}: unknown block compression type {kind}")


def _iter_block(block: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise CheckpointError(f"{where}: block too short")
    num_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 * (num_restarts + 1)
    if limit < 0:
        raise CheckpointError(f"{where}: block restart array larger than the block")
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = _read_varint(block, pos, where)
        unshared, pos = _read_varint(block, pos, where)
        value_len, pos = _read_varint(block, pos, where)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise CheckpointError(f"{where}: corrupt block entry at byte {pos}")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def read_table(table: bytes, where: str = "<table>") -> dict[bytes, bytes]:
    """All key/value pairs of a LevelDB-format table file, in key order."""
    if len(table) < FOOTER_SIZE:
        raise CheckpointError(f"{where}: {len(table)} bytes is too short for a table file")
    footer = table[-FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise CheckpointError(f"{where}: not a TensorFlow index table (bad magic number)")
    _, pos = _read_varint(footer, 0, where)  # metaindex offset (no meta blocks are needed)
    _, pos = _read_varint(footer, pos, where)  # metaindex size
    index_offset, pos = _read_varint(footer, pos, where)
    index_size, _ = _read_varint(footer, pos, where)
    index_block = _read_block(table, index_offset, index_size, where)
    entries: dict[bytes, bytes] = {}
    previous = None
    for _, handle in _iter_block(index_block, where):
        block_offset, pos = _read_varint(handle, 0, where)
        block_size, _ = _read_varint(handle, pos, where)
        for key, value in _iter_block(_read_block(table, block_offset, block_size, where), where):
            if previous is not None and key <= previous:
                raise CheckpointError(f"{where}: keys out of order at {key!r}")
            entries[key] = value
            previous = key
    return entries


# --- tensor bundle --------------------------------------------------------------------------------


def read_index(index: bytes, where: str = "<index>") -> dict[str, TensorEntry]:
    """Decode a bundle's ``.index`` file contents into ``{name: TensorEntry}``."""
    table = read_table(index, where)
    if HEADER_KEY not in table:
        raise CheckpointError(f"{where}: no bundle header (empty key) in the index")
    num_shards, endianness = 1, 0
    for field, wire, value in _parse_fields(table.pop(HEADER_KEY), where):
        if field == 1 and wire == 0:
            num_shards = value
        elif field == 2 and wire == 0:
            endianness = value
    if num_shards != 1:
        raise CheckpointError(f"{where}: {num_shards} data shards; only single-shard bundles")
    if endianness != 0:
        raise CheckpointError(f"{where}: big-endian bundle (unsupported)")
    entries = {}
    for key, value in table.items():
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CheckpointError(f"{where}: tensor name {key!r} is not UTF-8") from e
        entries[name] = _parse_entry(name, value, where)
    return entries


def read_bundle(
    index: bytes, data: bytes, *, index_name: str = "<index>", data_name: str = "<data>"
) -> dict[str, np.ndarray]:
    """Every tensor of a single-shard bundle, given the bytes of its two files.

    Returns ``{variable name: array}`` with the stored dtype and shape (C order).  Each tensor's
    size is checked against its shape and its CRC-32C against the index.
    """
    tensors = {}
    for name, entry in read_index(index, index_name).items():
        if entry.shard_id != 0:
            raise CheckpointError(f"{index_name}: tensor {name!r} is in shard {entry.shard_id}")
        expected = int(np.prod(entry.shape, dtype=np.int64)) * entry.dtype.itemsize
        if entry.size != expected:
            raise CheckpointError(
                f"{index_name}: tensor {name!r} of shape {entry.shape} and dtype {entry.dtype} "
                f"needs {expected} bytes, the index says {entry.size}"
            )
        end = entry.offset + entry.size
        if end > len(data):
            raise CheckpointError(
                f"{data_name}: truncated: tensor {name!r} ends at byte {end}, "
                f"the file has {len(data)}"
            )
        raw = data[entry.offset : end]
        if mask_crc(crc32c(raw)) != entry.crc32c:
            raise CheckpointError(f"{data_name}: checksum mismatch for tensor {name!r}")
        array = np.frombuffer(raw, dtype=entry.dtype.newbyteorder("<")).reshape(entry.shape)
        tensors[name] = array.astype(entry.dtype, copy=True)  # own, writable, native order
    return tensors


def bundle_paths(prefix: str | Path) -> tuple[Path, Path]:
    """``(index_path, data_path)`` for a checkpoint prefix.

    A directory counts as the prefix ``DIR/`` (musicnn saves its checkpoints that way, so the
    files are ``DIR/.index`` and ``DIR/.data-00000-of-00001``).
    """
    prefix = Path(prefix)
    if prefix.is_dir():
        return prefix / ".index", prefix / ".data-00000-of-00001"
    return (
        prefix.with_name(prefix.name + ".index"),
        prefix.with_name(prefix.name + ".data-00000-of-00001"),
    )


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Load every tensor of a TensorFlow checkpoint: ``{variable name: np.ndarray}``.

    ``prefix`` is what ``tf.train.Saver`` was given (``model.ckpt`` for ``model.ckpt.index``) or
    a directory holding ``.index`` / ``.data-00000-of-00001``.  Raises :class:`CheckpointError`
    on a missing, truncated or corrupt file.
    """
    index_path, data_path = bundle_paths(prefix)
    contents = []
    for path in (index_path, data_path):
        try:
            contents.append(path.read_bytes())
        except OSError as e:
            raise CheckpointError(f"cannot read checkpoint file {path}: {e.strerror}") from e
    return read_bundle(*contents, index_name=str(index_path), data_name=str(data_path))


__all__ = [
    "CheckpointError",
    "TensorEntry",
    "bundle_paths",
    "crc32c",
    "mask_crc",
    "read_bundle",
    "read_checkpoint",
    "read_index",
    "read_table",
]
