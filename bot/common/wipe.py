"""Overwriting secret bytes with zeros once they are used, as far as Python allows.

Python gives no guarantee here: a `str` cannot be wiped at all, the garbage collector and the
allocator may have copied a buffer before, and a library may keep its own copy. What can be done is
done: a `bytearray` is zeroed in place, and on CPython a `bytes` object the caller owns (a data key
KMS returned, a plaintext just decrypted) is zeroed through its buffer. Only pass bytes that nothing
else shares: never a literal, never a one-byte or empty `bytes` (CPython shares those).
"""

from __future__ import annotations

import ctypes
import platform
import sys

_CPYTHON = platform.python_implementation() == "CPython"
# Where a bytes object's data starts, from the object's address: the size of an empty bytes object
# counts the data's trailing NUL byte, hence minus one.
_BYTES_DATA_OFFSET = sys.getsizeof(b"") - 1


def wipe(buf: bytearray | bytes | memoryview | None) -> None:
    """Overwrite `buf` with zeros in place (see the module docstring for what that can promise)."""
    if buf is None:
        return
    if isinstance(buf, memoryview):
        if not buf.readonly:
            buf[:] = bytes(buf.nbytes)
        return
    if isinstance(buf, bytearray):
        buf[:] = bytes(len(buf))  # same length: copied in place, the buffer is not reallocated
        return
    if isinstance(buf, bytes) and len(buf) > 1 and _CPYTHON:
        ctypes.memset(id(buf) + _BYTES_DATA_OFFSET, 0, len(buf))
