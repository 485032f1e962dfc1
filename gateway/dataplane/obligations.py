"""Obligations applied to a batch stream, vectorised with Arrow compute: keep and drop fields,
mask (by kind), cap rows across batches, add a watermark column.

The data plane receives obligations as data (`Obligations`); it does not decide them. The mask
shapes are those of `gateway.dataplane.masks.mask_value` (specs/policy-input.md, "Masking"),
computed on whole columns (a column of a few values goes value by value, through them): a
masked value is the text of the value (`str()` of it), shaped by its kind; null stays null; a
masked column is a string column.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from gateway.dataplane.encoders import _json_float, _octets
from gateway.dataplane.errors import source_unavailable
from gateway.dataplane.masks import mask_value
from gateway.dataplane.stream import BatchStream

WATERMARK_COLUMN = "_watermark"
HIDDEN = "***"
# Up to this many values, a column is masked value by value (gateway/dataplane/masks.py): a
# page of a few rows costs less that way than the dozen Arrow calls of a vectorised shape.
SMALL = 64


@dataclass(frozen=True)
class Obligations:
    """What to deliver of a stream.

    `fields`: the columns to deliver, in order (None: all the source has); `drop`: columns to
    leave out; `mask`: column -> kind (name, phone, id_card, email, text; anything else is
    text); `row_cap`: at most this many rows in all; `watermark`: when set, every row gets a
    `_watermark` column of this value.
    """

    fields: Sequence[str] | None = None
    drop: frozenset[str] = frozenset()
    mask: Mapping[str, str] = field(default_factory=dict)
    row_cap: int | None = None
    watermark: str | None = None

    def kept(self, names: Sequence[str]) -> list[str]:
        """Return the delivered columns of a source with columns `names`."""
        wanted = list(self.fields) if self.fields is not None else list(names)
        # a source's own _watermark column gives way to the one the obligations add
        added = {WATERMARK_COLUMN} if self.watermark is not None else set()
        return [n for n in wanted if n not in self.drop and n not in added]


# -- masking ---------------------------------------------------------------------------------


def _stars(n: pa.Array) -> pa.Array:
    return pc.binary_repeat("*", n)


def _text(values: pa.Array) -> pa.Array:
    """Return the values as text, as `str()` writes them (True/False for booleans)."""
    t = values.type
    if pa.types.is_dictionary(t):
        values, t = values.dictionary_decode(), t.value_type
    if pa.types.is_string(t):
        return values
    if pa.types.is_boolean(t):
        return pc.if_else(values, "True", "False")
    if pa.types.is_floating(t):
        out = _json_float(values)  # repr(); NaN/Infinity come back as JSON spells them
        return pc.replace_substring_regex(
            pc.replace_substring(out, "NaN", "nan"), "Infinity", "inf"
        )
    return values.cast(pa.string())


def _length_range(length: pa.Array) -> tuple[int, int]:
    """Return the (min, max) of the lengths of the non-null values, (0, 0) when there are none."""
    bounds = pc.min_max(length)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return (0, 0) if low is None else (low, high)


def _ascii(text: pa.Array) -> bool:
    """Return whether every value is ASCII (its characters are then as many as its bytes): one
    maximum over the bytes of the values, seen as one uint8 array."""
    octets = _octets(text)
    return octets is None or pc.max(octets).as_py() < 0x80


def _slice(text: pa.Array, ascii: bool, start: int, stop: int | None = None) -> pa.Array:
    """Return the characters start .. stop of each value (utf8_slice_codeunits); on ASCII text
    by bytes, which is the same and a fraction of the work."""
    if not ascii:
        return pc.utf8_slice_codeunits(text, start, stop)
    out = pc.binary_slice(text.view(pa.binary()), start, stop)
    return out.view(pa.string())  # ASCII slices of ASCII text: valid UTF-8 as they are


END = 2**31 - 1  # a slice's stop past the end of any value (string offsets are 32-bit)


def _replace(text: pa.Array, ascii: bool, start: int, stop: int, by: str) -> pa.Array:
    """Return each value with its characters start .. stop replaced by `by` (one kernel, no
    join of pieces); by bytes on ASCII text."""
    if ascii:
        return pc.binary_replace_slice(text, start, stop, by)
    return pc.utf8_replace_slice(text, start, stop, by)


def _keep_ends(head: int, tail: int, minimum: int):
    """Return the mask that keeps the first `head` and last `tail` characters of a value of at
    least `minimum` characters, starring the rest; a shorter value is starred whole.

    One pass over the lengths decides the work: when every value is long enough and of one
    length, the middle is replaced by one constant in one kernel; otherwise the pieces are
    joined, a shorter value starred whole.
    """

    def mask(text: pa.Array, length: pa.Array, ascii: bool) -> pa.Array:
        low, high = _length_range(length)
        if high < minimum:  # every value is starred whole
            return _stars(length)
        if low == high:  # one length, long enough: one replacement of a constant middle
            return _replace(text, ascii, head, low - tail, "*" * (low - head - tail))
        middle = _stars(pc.max_element_wise(pc.subtract(length, head + tail), 0))
        kept = pc.binary_join_element_wise(
            _slice(text, ascii, 0, head),
            middle,
            _slice(text, ascii, -tail),
            "",
        )
        if low >= minimum:
            return kept
        return pc.if_else(pc.greater_equal(length, minimum), kept, _stars(length))

    return mask


_mask_phone = _keep_ends(3, 4, 11)  # the shapes of gateway.exchanges.obligations
_mask_id_card = _keep_ends(1, 1, 15)


def _mask_name(text: pa.Array, length: pa.Array, ascii: bool) -> pa.Array:
    kept = _replace(text, ascii, 1, END, "**")  # the first character and two stars
    if _length_range(length)[0] >= 2:
        return kept
    return pc.if_else(pc.greater_equal(length, 2), kept, "*")


_ALTERNATE: pa.Array | None = None


def _alternate(n: int) -> pa.Array:
    """Return [True, False, True, ...] of length n (a slice of one kept array, grown as
    needed): the locals among the values of a split whose every list holds two."""
    global _ALTERNATE
    if _ALTERNATE is None or len(_ALTERNATE) < n:
        _ALTERNATE = pa.array([True, False] * (max(n, 1 << 18) // 2 + 1), pa.bool_())
    return _ALTERNATE.slice(0, n)


def _mask_email(text: pa.Array, length: pa.Array, ascii: bool) -> pa.Array:
    # str.partition("@"): the local part is before the first @, the domain all after it. One
    # split (no regex): each value's list holds [local] or [local, domain]. The locals are cut
    # to their first character in the split's own values, and each list joined with "***@".
    parts = pc.split_pattern(text, "@", max_splits=1)
    values, offsets = parts.values, parts.offsets
    if not len(values):
        return pc.if_else(pc.is_valid(text), HIDDEN, pa.scalar(None, pa.string()))
    sizes = pc.binary_length(values)
    counts = pc.list_value_length(parts)
    if not text.null_count and pc.min(counts).as_py() == 2 and pc.min(sizes).as_py() > 0:
        # Every value has an @ with a local part and a domain (the usual column): the values
        # alternate local, domain, and no value falls back to the hidden shape.
        cut = pc.if_else(_alternate(len(values)), _slice(values, ascii, 0, 1), values)
        return pc.binary_join(pa.ListArray.from_arrays(offsets, cut), "***@")
    last = len(values) - 1
    starts = offsets.slice(0, len(parts))
    local = pc.take(sizes, pc.min_element_wise(starts, last))
    domain = pc.take(sizes, pc.min_element_wise(pc.add(starts, 1), last))
    ok = pc.fill_null(
        pc.and_(pc.equal(counts, 2), pc.and_(pc.greater(local, 0), pc.greater(domain, 0))),
        False,
    )
    firsts = pc.take(offsets, pc.list_parent_indices(parts))
    is_local = pc.equal(pa.array(range(len(values)), pa.int32()), firsts)
    cut = pc.if_else(is_local, _slice(values, ascii, 0, 1), values)
    kept = pc.binary_join(pa.ListArray.from_arrays(offsets, cut), "***@")
    return pc.if_else(ok, kept, HIDDEN)


def _mask_text(text: pa.Array, length: pa.Array, ascii: bool) -> pa.Array:
    return pc.if_else(pc.is_valid(text), HIDDEN, pa.scalar(None, pa.string()))


SHAPES = {
    "name": _mask_name,
    "phone": _mask_phone,
    "id_card": _mask_id_card,
    "email": _mask_email,
    "text": _mask_text,
}


def mask_array(values: pa.Array, kind: str = "text") -> pa.Array:
    """Return `values` masked to the shape of `kind` as a string array (null stays null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count == len(values):  # nothing to mask: no work on an all-null chunk
        return pa.nulls(len(values), pa.string())
    text = _text(values)
    if len(text) <= SMALL:  # the same shapes, on the same text
        return pa.array([mask_value(v, kind) for v in text.to_pylist()], pa.string())
    out = _native_mask(text, kind) if native_masks() else None
    if out is None:
        ascii = _ascii(text)
        # On ASCII text the characters are the bytes: the lengths come from the offsets alone.
        length = pc.binary_length(text) if ascii else pc.utf8_length(text)
        out = SHAPES.get(kind, _mask_text)(text, length, ascii)
    if text.null_count:  # null stays null, whatever a shape's if_else filled in
        out = pc.if_else(pc.is_valid(text), out, pa.scalar(None, pa.string()))
    return out.cast(pa.string())


# -- masks, native (gateway/dataplane/_masks.c) ---------------------------------------------

try:  # built by `pip install` where a C compiler is (setup.py: optional)
    from gateway.dataplane import _masks
except ImportError:  # pragma: no cover - a machine without a compiler: Arrow's kernels
    _masks = None


def native_masks() -> bool:
    """Return whether masks are applied by the native kernel: it was built and
    `DSGW_MASKS_NATIVE` is not 0 (which forces Arrow's kernels, for comparison)."""
    return _masks is not None and os.environ.get("DSGW_MASKS_NATIVE", "1").strip() != "0"


def _native_mask(text: pa.Array, kind: str) -> pa.Array | None:
    """Return the string array `text` masked to `kind` by the native kernel (one pass over the
    values, the GIL released), a null's slot masked as its (empty) bytes: the caller puts the
    nulls back. None when its values would not fit 32-bit offsets (Arrow's kernels then take
    it)."""
    assert _masks is not None
    code = getattr(_masks, kind.upper()) if kind in SHAPES else _masks.TEXT
    _validity, offsets, data = text.buffers()
    try:
        new_offsets, new_data = _masks.mask(
            code, len(text), text.offset, offsets, b"" if data is None else data
        )
    except OverflowError:
        return None
    buffers = [None, pa.py_buffer(new_offsets), pa.py_buffer(new_data)]
    return pa.Array.from_buffers(pa.string(), len(text), buffers, null_count=0)


# -- the stream ------------------------------------------------------------------------------


def output_schema(schema: pa.Schema, obligations: Obligations) -> pa.Schema:
    """Return the schema a stream of `schema` has after `obligations`."""
    out = []
    for name in obligations.kept(schema.names):
        index = schema.get_field_index(name)
        if index < 0:
            raise source_unavailable(f"the source has no column {name!r}")
        f = schema.field(index)
        out.append(pa.field(name, pa.string()) if name in obligations.mask else f)
    if obligations.watermark is not None:
        out.append(pa.field(WATERMARK_COLUMN, pa.string(), nullable=False))
    return pa.schema(out)


def apply_to_batch(
    batch: pa.RecordBatch, obligations: Obligations, schema: pa.Schema
) -> pa.RecordBatch:
    """Return one batch after the field, mask and watermark obligations (no row cap)."""
    columns = []
    for name in obligations.kept(batch.schema.names):
        column = batch.column(name)
        if name in obligations.mask:
            column = mask_array(column, obligations.mask[name])
        columns.append(column)
    if obligations.watermark is not None:
        columns.append(pa.repeat(pa.scalar(obligations.watermark, pa.string()), batch.num_rows))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def apply(stream: BatchStream, obligations: Obligations) -> BatchStream:
    """Return `stream` with `obligations` applied; a row cap ends (and closes) the source early."""
    schema = output_schema(stream.schema, obligations)

    def batches() -> Iterator[pa.RecordBatch]:
        left = obligations.row_cap
        if left is not None and left <= 0:
            return
        for batch in stream:
            if left is not None and batch.num_rows > left:
                batch = batch.slice(0, left)
            out = apply_to_batch(batch, obligations, schema)
            yield out
            if left is not None:
                left -= batch.num_rows
                if left <= 0:
                    return

    return BatchStream(schema, batches(), on_close=stream.close, threadsafe=stream.threadsafe)
