"""Reading IDX files, the format of the original MNIST and of Fashion-MNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the values in C
order, big-endian. The files usually come gzip-compressed (``*.gz``). Every
way a file can be wrong - not gzip after all, cut short, a wrong magic
number, a size that does not match its header - is one ``UserError`` line
that names the file and says how to fix it. Plain NumPy; no TensorFlow.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .errors import UserError

# Type code (third magic byte) -> big-endian NumPy dtype.
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_FIX = "replace it with a complete copy"


def read_idx(path: str | Path, fix: str = DEFAULT_FIX) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or not), in native byte order.

    ``fix`` ends every error message: the caller knows where a good copy comes from.
    """
    path = Path(path)
    raw = _read_bytes(path, fix)
    return parse_idx(raw, path, fix)


def parse_idx(raw: bytes, path: str | Path = "<bytes>", fix: str = DEFAULT_FIX) -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file, checking the header against the size."""
    def bad(problem: str) -> UserError:
        return UserError(f"{path}: {problem}; {fix}")

    if len(raw) < 4:
        raise bad(f"only {len(raw)} bytes, too short for an IDX header")
    zero, type_code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\0\0" or type_code not in DTYPES:
        raise bad(f"not an IDX file (magic number {raw[:4].hex(' ')}, "
                  "expected 00 00 then a type code such as 08)")
    if ndim == 0:
        raise bad("IDX header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise bad(f"truncated IDX header ({len(raw)} bytes, the {ndim} dimensions need "
                  f"{header_size})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_size
    if actual < expected:
        raise bad(f"truncated: header says {'x'.join(map(str, shape))} values "
                  f"({expected} bytes) but only {actual} bytes follow")
    if actual > expected:
        raise bad(f"{actual - expected} unexpected bytes after the "
                  f"{'x'.join(map(str, shape))} values the header declares")
    data = np.frombuffer(raw, dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _read_bytes(path: Path, fix: str) -> bytes:
    """The file's bytes, decompressed when they start with the gzip magic number."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror or err}); {fix}") from None
    if raw[:2] != GZIP_MAGIC:
        if path.suffix == ".gz":
            raise UserError(f"{path}: not a gzip file although named .gz; {fix}")
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        # EOFError: the compressed stream ends early (a cut-off download).
        reason = "truncated gzip data" if isinstance(err, EOFError) else f"damaged gzip data ({err})"
        raise UserError(f"{path}: {reason}; {fix}") from None


def write_idx(path: str | Path, array: np.ndarray) -> bytes:
    """The IDX bytes of ``array`` (gzip-compressed when ``path`` ends in .gz).

    Used by the tests to make tiny files; returns bytes so that the caller
    writes them atomically (``outputs.write_bytes``).
    """
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items()}
    code = codes[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    raw = header + array.astype(DTYPES[code]).tobytes()
    return gzip.compress(raw) if str(path).endswith(".gz") else raw
