"""Sparse ``CalendarEvent`` writers: code specialised for each key set ("shape") of a record.

A Google event has about 17 of ``CalendarEvent``'s 47 fields, an attendee 2 to 4 of its 11. The
writer of ``avro_fastpath`` visits every field of every record (about 100 ``dict.get`` and
branches for a typical event). The writers here look at the keys an object actually has,
``tuple(obj)``, and run a function generated once for that tuple of keys: it unpacks
``obj.values()`` in one step, checks the types of the values it has, encodes them and joins them
with precomputed constants. A run of absent fields is one constant (``00`` per field, each the
null branch of its union, merged with the next present field's ``02``).

Anything the generated code does not expect raises (``_Miss`` for a type it does not handle, an
IndexError for a string or array of 4,096 bytes or more, a KeyError or UnicodeEncodeError) and
the whole event is written again by the ``avro_fastpath`` writer, which handles every case
(unknown keys of odd types, values that belong in ``unknown_fields``, lone surrogates, integers
beyond int64...). So the bytes are always exactly what that writer, and fastavro, write; the
fast path only has to be right when it does not raise.

Shapes are compiled when seen for the ``compile_after``-th time, at most ``max_shapes`` per
record type: a stream of ever-new shapes costs a bounded amount of compiling, then runs on the
general writer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from connector.adapters.avro_fastpath import Writer, compile_writer, zigzag
from connector.adapters.avro_native import native_writer
from connector.core.mapping import ANY, BOOLEAN, EVENT_SPEC, LONG, STRING, Arr, Kind, Rec, StrMap

_dumps = json.JSONEncoder(separators=(",", ":")).encode

_SMALL = tuple(zigzag(i) for i in range(4096))  # lengths and counts; IndexError beyond
_LONGS = {i: zigzag(i) for i in range(-4096, 4096)}
_MIN_LONG, _MAX_LONG = -(2**63), 2**63 - 1
_BOOL = (b"\x00", b"\x01")  # indexed by the bool itself
_NULL = b"\x00"
_SOME = b"\x02"
_MAX_KEYS = 64  # larger objects are not worth a function of their own
# Free text that may run past 4,096 bytes: its length is written by a function, not looked up
# (as are the JSON texts of ``any`` fields and of unknown_fields).
_LONG_TEXT = frozenset({"description"})

ShapeFn = Callable[[Mapping[str, Any]], bytes]


class _Miss(Exception):
    """The fast path does not handle this object: the general writer writes the event."""


def _long(v: int) -> bytes:
    if _MIN_LONG <= v <= _MAX_LONG:
        return zigzag(v)
    raise _Miss


def _length(n: int) -> bytes:
    return _SMALL[n] if n < 4096 else zigzag(n)


def _strings(v: list[Any]) -> bytes:
    """An ``array<string>`` after its union's ``02``."""
    if not v:
        return _NULL
    parts = [_SMALL[len(v)]]
    for x in v:
        if type(x) is not str:
            raise _Miss
        b = x.encode()
        parts.append(_SMALL[len(b)])
        parts.append(b)
    parts.append(_NULL)
    return b"".join(parts)


def _string_map(v: dict[Any, Any]) -> bytes:
    """A ``map<string>`` after its union's ``02``."""
    if not v:
        return _NULL
    parts = [_SMALL[len(v)]]
    for k, x in v.items():
        if type(k) is not str or type(x) is not str:
            raise _Miss
        kb = k.encode()
        xb = x.encode()
        parts += (_SMALL[len(kb)], kb, _SMALL[len(xb)], xb)
    parts.append(_NULL)
    return b"".join(parts)


class _RecordShapes:
    """The compiled shapes of one record type, and how to make more."""

    def __init__(self, rec: Rec, owner: _ShapeCompiler) -> None:
        self.rec = rec
        self.owner = owner
        self.index = {name: i for i, (name, _) in enumerate(rec.fields)}
        self.kinds = dict(rec.fields)
        self.shapes: dict[tuple[Any, ...], ShapeFn] = {}
        self.seen: dict[tuple[Any, ...], int] = {}

    def learn(self, obj: Mapping[str, Any]) -> ShapeFn:
        """The function for ``obj``'s shape, compiled now if it is due; raises _Miss if not."""
        keys = tuple(obj)
        found = self.shapes.get(keys)
        if found is not None:
            return found
        owner = self.owner
        if len(self.shapes) >= owner.max_shapes or len(keys) > _MAX_KEYS:
            raise _Miss
        if any(type(k) is not str for k in keys):
            raise _Miss
        seen = self.seen.get(keys, 0) + 1
        if seen < owner.compile_after:
            if len(self.seen) >= 4 * owner.max_shapes:
                self.seen.clear()
            self.seen[keys] = seen
            raise _Miss
        self.seen.pop(keys, None)
        fn = owner.compile_shape(self, keys)
        self.shapes[keys] = fn
        return fn


class _ShapeCompiler:
    """Generates and holds the code: one namespace shared by every generated function."""

    def __init__(self, compile_after: int, max_shapes: int) -> None:
        self.compile_after = compile_after
        self.max_shapes = max_shapes
        self.records: dict[str, _RecordShapes] = {}
        self.namespace: dict[str, Any] = {
            "M": _Miss,
            "SMALL": _SMALL,
            "LONGS": _LONGS,
            "BOOL": _BOOL,
            "lg": _long,
            "ln": _length,
            "strs": _strings,
            "smap": _string_map,
            "dumps": _dumps,
        }
        self._lock = threading.Lock()
        self._count = 0

    def record(self, rec: Rec) -> _RecordShapes:
        shapes = self.records.get(rec.name)
        if shapes is None:
            shapes = self.records[rec.name] = _RecordShapes(rec, self)
            self.namespace[f"SH_{rec.name}"] = shapes.shapes
            self.namespace[f"L_{rec.name}"] = shapes.learn
            for _, kind in rec.fields:
                sub = kind.items if isinstance(kind, Arr) else kind
                if isinstance(sub, Rec):
                    self.record(sub)
            self._exec(_ARRAY.format(name=rec.name), f"<avro array {rec.name}>")
        return shapes

    def compile_shape(self, shapes: _RecordShapes, keys: tuple[str, ...]) -> ShapeFn:
        with self._lock:
            self._count += 1
            name = f"s{self._count}_{shapes.rec.name}"
            self._exec(_shape_source(shapes, keys, name), f"<avro shape {name}>")
            fn: ShapeFn = self.namespace.pop(name)
        return fn

    def _exec(self, source: str, filename: str) -> None:
        exec(compile(source, filename, "exec"), self.namespace)  # noqa: S102


# ``A_<name>(list)``: an ``array<name>`` after its union's ``02``.
_ARRAY = """
def A_{name}(v):
    if not v:
        return b"\\x00"
    parts = [(SH_{name}.get(tuple(x)) or L_{name}(x))(x) for x in v if type(x) is dict]
    if len(parts) != len(v):
        raise M
    return b"".join((SMALL[len(v)], *parts, b"\\x00"))
"""


def _shape_source(shapes: _RecordShapes, keys: tuple[str, ...], name: str) -> str:
    """``def <name>(o)`` returning the body of a record whose keys are exactly ``keys``."""
    var = {k: f"v{i}" for i, k in enumerate(keys)}
    known = sorted((shapes.index[k], k) for k in keys if k in shapes.index)
    unknown = [k for k in keys if k not in shapes.index]
    checks: list[str] = []
    encodes: list[str] = []
    pieces: list[str] = []  # expressions to join; constants are bytes literals
    const = bytearray()

    def flush() -> None:
        if const:
            pieces.append(repr(bytes(const)))
            const.clear()

    pos = 0
    for index, key in known:
        kind: Kind = shapes.kinds[key]
        v = var[key]
        const += _NULL * (index - pos) + _SOME  # the absent fields before it, its branch
        pos = index + 1
        flush()
        if kind == STRING:
            checks.append(f"type({v}) is not str")
            encodes.append(f"    {v} = {v}.encode()")
            length = f"ln(len({v}))" if key in _LONG_TEXT else f"SMALL[len({v})]"
            pieces += (length, v)
        elif kind == BOOLEAN:
            checks.append(f"type({v}) is not bool")
            pieces.append(f"BOOL[{v}]")
        elif kind == LONG:
            checks.append(f"type({v}) is not int")
            pieces.append(f"(LONGS.get({v}) or lg({v}))")
        elif kind == ANY:
            checks.append(f"{v} is None")
            encodes.append(f"    {v} = dumps({v}).encode()")
            pieces += (f"ln(len({v}))", v)
        elif isinstance(kind, Rec):
            checks.append(f"type({v}) is not dict")
            sub = kind.name
            pieces.append(f"(SH_{sub}.get(tuple({v})) or L_{sub}({v}))({v})")
        elif isinstance(kind, StrMap):
            checks.append(f"type({v}) is not dict")
            pieces.append(f"smap({v})")
        elif isinstance(kind, Arr):
            checks.append(f"type({v}) is not list")
            items = kind.items
            pieces.append(f"A_{items.name}({v})" if isinstance(items, Rec) else f"strs({v})")
        else:  # pragma: no cover - the spec is static
            raise TypeError(f"unsupported kind {kind!r}")
    const += _NULL * (len(shapes.rec.fields) - pos)
    if unknown:  # every known value is typed (else _Miss), so these are all of unknown_fields
        items = ", ".join(f"{k!r}: {var[k]}" for k in unknown)
        encodes.append(f"    u = dumps({{{items}}}).encode()")
        const += _SOME
        flush()
        pieces += ("ln(len(u))", "u")
    else:
        const += _NULL
    flush()
    lines = [f"def {name}(o):"]
    if keys:
        lines.append(f"    {', '.join(var[k] for k in keys)}, = o.values()")
    if checks:
        lines.append(f"    if {' or '.join(checks)}:")
        lines.append("        raise M")
    lines += encodes
    joined = pieces[0] if len(pieces) == 1 else f"b''.join(({', '.join(pieces)},))"
    lines.append(f"    return {joined}")
    return "\n".join(lines) + "\n"


class SparseWriter:
    """Writes ``CalendarEvent`` bodies: ``SparseWriter().write(google_json, out)``.

    The same bytes as ``avro_fastpath.compile_writer(spec)`` (which it falls back to), and so as
    fastavro's ``schemaless_writer`` for ``to_calendar_event(google_json)``.
    ``compile_after``: a shape gets its own function when seen that many times (1: at once).
    ``max_shapes``: per record type; objects of other shapes go to the general writer.
    ``use_native``: try the compiled writer (``avro_native``, when built) first; it writes a
    plain event in about a quarter of the shape functions' time and raises for anything else.
    """

    def __init__(
        self,
        spec: Rec = EVENT_SPEC,
        *,
        compile_after: int = 2,
        max_shapes: int = 512,
        use_native: bool = True,
    ) -> None:
        self._compiler = _ShapeCompiler(compile_after, max_shapes)
        top = self._compiler.record(spec)
        general = compile_writer(spec)
        shapes_get = top.shapes.get
        learn = top.learn
        native = native_writer(spec) if use_native else None

        def fast(obj: dict[str, Any]) -> bytes:
            """The body from the shape functions; raises if they do not handle ``obj``."""
            return (shapes_get(tuple(obj)) or learn(obj))(obj)

        def write(obj: Mapping[str, Any], out: bytearray) -> None:
            if type(obj) is dict:
                if native is not None:
                    try:
                        out += native(obj)
                    except Exception:  # noqa: S110 - not a plain event: the Python writers
                        pass
                    else:
                        return
                try:
                    body = (shapes_get(tuple(obj)) or learn(obj))(obj)
                except Exception:  # noqa: S110 - the general writer decides (and raises)
                    pass
                else:
                    out += body
                    return
            general(obj, out)

        self.fast = fast
        self.write: Writer = write

    def shape_counts(self) -> dict[str, int]:
        """Record name -> how many shapes have their own function."""
        return {name: len(r.shapes) for name, r in self._compiler.records.items()}
