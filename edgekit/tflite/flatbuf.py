"""Bounds-checked reading of flatbuffer tables, vectors and strings.

Every read checks its offset and length against the buffer before touching or
allocating anything, and scalars and vectors must sit at offsets aligned to
their element size, as the flatbuffers verifier requires. Offsets to tables,
vectors and strings are unsigned and point forward, so walking a file cannot
loop; a budget on the number of vector elements read keeps the work linear in
the file size even when a crafted file points many vectors at the same bytes.
"""

from __future__ import annotations

import struct

import numpy as np

_SIZES = {"b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8}


class MalformedError(ValueError):
    """The bytes break the flatbuffer format; the message says what and where."""


class Buffer:
    """The bytes of one flatbuffer, with checked reads."""

    def __init__(self, data: bytes, *, element_budget: int | None = None):
        self.data = data
        self.size = len(data)
        # Honest files read each vector element once; allow generous slack.
        self.budget = element_budget if element_budget is not None else 4 * self.size + 4096

    def check(self, offset: int, length: int, what: str) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise MalformedError(
                f"{what} at byte {offset} ({length} bytes) lies outside the file ({self.size} bytes)"
            )

    def check_aligned(self, offset: int, alignment: int, what: str) -> None:
        if offset % alignment:
            raise MalformedError(f"{what} at byte {offset} is not aligned to {alignment} bytes")

    def scalar(self, fmt: str, offset: int, what: str):
        size = _SIZES[fmt]
        self.check(offset, size, what)
        self.check_aligned(offset, size, what)
        return struct.unpack_from("<" + fmt, self.data, offset)[0]

    def spend(self, count: int, what: str) -> None:
        self.budget -= count
        if self.budget < 0:
            raise MalformedError(f"{what}: the file's vectors overlap far more than any real model's")

    def root(self) -> "Table":
        """The root table; its fields are labelled by name alone in errors."""
        return Table(self, self.scalar("I", 0, "root offset"), "")


class Table:
    """One flatbuffer table: fields are addressed by slot (the field's position in the schema)."""

    __slots__ = ("buf", "pos", "what", "_vtable", "_vtable_size")

    def __init__(self, buf: Buffer, pos: int, what: str):
        self.buf, self.pos, self.what = buf, pos, what
        what = what or "root table"  # the label of this table's own errors
        soffset = buf.scalar("i", pos, _join(what, "start"))
        vtable = pos - soffset
        self._vtable = vtable
        self._vtable_size = buf.scalar("H", vtable, _join(what, "vtable"))
        if self._vtable_size < 4 or self._vtable_size % 2:
            raise MalformedError(f"{what} has a vtable of impossible size {self._vtable_size}")
        buf.check(vtable, self._vtable_size, _join(what, "vtable"))
        inline_size = buf.scalar("H", vtable + 2, _join(what, "vtable"))
        buf.check(pos, max(inline_size, 4), what)

    def _field(self, slot: int) -> int:
        """Absolute position of a field, or 0 when the table omits it."""
        entry = 4 + 2 * slot
        if entry >= self._vtable_size:
            return 0
        relative = self.buf.scalar("H", self._vtable + entry, _join(self.what or "root table", "vtable"))
        return self.pos + relative if relative else 0

    def has(self, slot: int) -> bool:
        return self._field(slot) != 0

    def scalar(self, slot: int, fmt: str, default, what: str = "field"):
        at = self._field(slot)
        if not at:
            return default
        return self.buf.scalar(fmt, at, _join(self.what, what))

    def _target(self, slot: int, what: str) -> int | None:
        at = self._field(slot)
        if not at:
            return None
        return at + self.buf.scalar("I", at, _join(self.what, f"{what} offset"))

    def table(self, slot: int, what: str) -> "Table | None":
        target = self._target(slot, what)
        return None if target is None else Table(self.buf, target, _join(self.what, what))

    def _vector(self, slot: int, element_size: int, what: str) -> tuple[int, int] | None:
        """(start of elements, count) of a vector field, checked to lie in the file."""
        target = self._target(slot, what)
        if target is None:
            return None
        label = _join(self.what, what)
        count = self.buf.scalar("I", target, f"{label} length")
        start = target + 4
        # Check the length against the bytes left before anything is allocated.
        self.buf.check(start, count * element_size, f"{label} ({count} elements)")
        self.buf.check_aligned(start, element_size, label)
        return start, count

    def scalars(self, slot: int, fmt: str, what: str) -> tuple | None:
        """A vector of scalars as a tuple of Python numbers, None when absent."""
        span = self._vector(slot, _SIZES[fmt], what)
        if span is None:
            return None
        start, count = span
        self.buf.spend(count, _join(self.what, what))
        return struct.unpack_from(f"<{count}{fmt}", self.buf.data, start)

    def array(self, slot: int, dtype: str, what: str) -> np.ndarray | None:
        """A vector of scalars as a read-only numpy view of the file, None when absent."""
        dt = np.dtype(dtype)
        span = self._vector(slot, dt.itemsize, what)
        if span is None:
            return None
        start, count = span
        self.buf.spend(count, _join(self.what, what))
        return np.frombuffer(self.buf.data, dtype=dt, count=count, offset=start)

    def byte_span(self, slot: int, what: str) -> tuple[int, int] | None:
        """(start, length) of a [ubyte] vector, without copying it."""
        return self._vector(slot, 1, what)

    def string(self, slot: int, what: str) -> str | None:
        span = self._vector(slot, 1, what)
        if span is None:
            return None
        start, count = span
        label = _join(self.what, what)
        self.buf.check(start + count, 1, f"{label} terminator")
        self.buf.spend(count, label)
        return self.buf.data[start:start + count].decode("utf-8", errors="replace")

    def tables(self, slot: int, what: str, item: str) -> list["Table"] | None:
        """A vector of tables; element i is labelled '<item> i' in errors."""
        span = self._vector(slot, 4, what)
        if span is None:
            return None
        start, count = span
        self.buf.spend(count, _join(self.what, what))
        offsets = struct.unpack_from(f"<{count}I", self.buf.data, start)
        return [
            Table(self.buf, start + 4 * i + offset, _join(self.what, f"{item} {i}"))
            for i, offset in enumerate(offsets)
        ]


def _join(context: str, what: str) -> str:
    return f"{context} {what}" if context else what
