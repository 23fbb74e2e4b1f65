"""Fast Avro for ``CalendarEvent``: Google Event JSON straight to bytes and back.

fastavro spends most of its time choosing union branches, and every field of ``CalendarEvent``
is a union, so it writes only a few thousand events per second. This module generates, once, a
Python function per record of ``EVENT_SPEC`` that writes the Avro body directly from the Google
JSON (fusing ``to_calendar_event`` and the encoding), and one that reads the body straight back
to the Google JSON (fusing the decoding and ``from_calendar_event``). The bytes are exactly what
fastavro writes for ``to_calendar_event(item)``; a property test checks both directions.

It only handles bodies written with our own ``CalendarEvent`` schema: records written with
another schema go through fastavro's schema resolution.

The connector writes bodies with ``avro_shapes.SparseWriter``, which runs code specialised for
the fields an event actually has and falls back to ``compile_writer`` here for anything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from connector.core.mapping import (
    ANY,
    BOOLEAN,
    EVENT_SPEC,
    LONG,
    STRING,
    Arr,
    Kind,
    Rec,
    StrMap,
    is_valid,
)

Writer = Callable[[Mapping[str, Any], bytearray], None]
Reader = Callable[[bytes, int], tuple[dict[str, Any], int]]


class MalformedAvroError(ValueError):
    """The bytes are not a valid body of the expected schema."""


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def zigzag(n: int) -> bytes:
    """An Avro ``long``: zig-zag, then base-128 varint."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = tuple(zigzag(i) for i in range(4096))


def write_long(out: bytearray, n: int) -> None:
    out += _SMALL[n] if 0 <= n < 4096 else zigzag(n)


def write_string(out: bytearray, s: str) -> None:
    b = s.encode()
    n = len(b)
    out += _SMALL[n] if n < 4096 else zigzag(n)
    out += b


def _unknown_json(obj: Mapping[str, Any], kinds: Mapping[str, Kind]) -> str | None:
    unknown = {k: v for k, v in obj.items() if k not in kinds or not is_valid(kinds[k], v)}
    return _dumps(unknown) if unknown else None


_STR_FIELD = """
    v = o.get({key!r})
    if type(v) is str:
        try:
            b = v.encode()
        except UnicodeEncodeError:
            out += N
        else:
            out += S1
            l = len(b)
            out += SMALL[l] if l < 4096 else zz(l)
            out += b
            n += 1
    else:
        out += N"""

_BOOL_FIELD = """
    v = o.get({key!r})
    if v is True:
        out += T
        n += 1
    elif v is False:
        out += F
        n += 1
    else:
        out += N"""

_LONG_FIELD = """
    v = o.get({key!r})
    if type(v) is int and MIN <= v <= MAX:
        out += S1
        out += SMALL[v] if 0 <= v < 4096 else zz(v)
        n += 1
    else:
        out += N"""

_ANY_FIELD = """
    v = o.get({key!r})
    if v is not None:
        out += S1
        ws(out, dumps(v))
        n += 1
    else:
        out += N"""

_REC_FIELD = """
    v = o.get({key!r})
    if isinstance(v, dict):
        out += S1
        {func}(v, out)
        n += 1
    else:
        out += N"""

# Arrays and maps are written optimistically and rolled back if an element has the wrong type.
_ARRAY_FIELD = """
    v = o.get({key!r})
    ok = False
    if type(v) is list:
        mark = len(out)
        out += S1
        if v:
            out += SMALL[len(v)] if len(v) < 4096 else zz(len(v))
        try:
            for x in v:
                {item}
        except (TypeError, UnicodeEncodeError):
            del out[mark:]
        else:
            out += N
            ok = True
            n += 1
    if not ok:
        out += N"""

_REC_ITEM = """if not isinstance(x, dict):
                    raise TypeError
                {func}(x, out)"""

_STR_ITEM = """if type(x) is not str:
                    raise TypeError
                ws(out, x)"""

_MAP_FIELD = """
    v = o.get({key!r})
    ok = False
    if isinstance(v, dict):
        mark = len(out)
        out += S1
        if v:
            out += SMALL[len(v)] if len(v) < 4096 else zz(len(v))
        try:
            for mk, mv in v.items():
                if type(mk) is not str or type(mv) is not str:
                    raise TypeError
                ws(out, mk)
                ws(out, mv)
        except (TypeError, UnicodeEncodeError):
            del out[mark:]
        else:
            out += N
            ok = True
            n += 1
    if not ok:
        out += N"""

_RECORD_END = """
    if n == len(o):
        out += N
    else:
        u = unknown(o, KINDS_{name})
        if u is None:
            out += N
        else:
            out += S1
            ws(out, u)
"""


def _generate(rec: Rec, sources: dict[str, str], kinds: dict[str, Mapping[str, Kind]]) -> str:
    func = f"w_{rec.name}"
    if rec.name in sources:
        return func
    sources[rec.name] = ""  # reserve the name (records may repeat, never recurse)
    kinds[f"KINDS_{rec.name}"] = dict(rec.fields)
    lines = [f"def {func}(o, out):", "    n = 0"]
    for key, kind in rec.fields:
        if isinstance(kind, Rec):
            lines.append(_REC_FIELD.format(key=key, func=_generate(kind, sources, kinds)))
        elif isinstance(kind, Arr) and isinstance(kind.items, Rec):
            item = _REC_ITEM.format(func=_generate(kind.items, sources, kinds))
            lines.append(_ARRAY_FIELD.format(key=key, item=item))
        elif isinstance(kind, Arr) and kind.items == STRING:
            lines.append(_ARRAY_FIELD.format(key=key, item=_STR_ITEM))
        elif isinstance(kind, StrMap):
            lines.append(_MAP_FIELD.format(key=key))
        else:
            template = {
                STRING: _STR_FIELD,
                BOOLEAN: _BOOL_FIELD,
                LONG: _LONG_FIELD,
                ANY: _ANY_FIELD,
            }
            lines.append(template[str(kind)].format(key=key))
    lines.append(_RECORD_END.format(name=rec.name))
    sources[rec.name] = "\n".join(lines)
    return func


def compile_writer(spec: Rec = EVENT_SPEC) -> Writer:
    """The writer of ``spec``'s record: ``writer(google_json, out)`` appends the Avro body."""
    sources: dict[str, str] = {}
    kinds: dict[str, Mapping[str, Kind]] = {}
    entry = _generate(spec, sources, kinds)
    namespace: dict[str, Any] = {
        "N": b"\x00",
        "S1": b"\x02",
        "T": b"\x02\x01",
        "F": b"\x02\x00",
        "MIN": -(2**63),
        "MAX": 2**63 - 1,
        "SMALL": _SMALL,
        "zz": zigzag,
        "ws": write_string,
        "dumps": _dumps,
        "unknown": _unknown_json,
        **kinds,
    }
    code = "\n\n".join(sources.values())
    exec(compile(code, f"<avro writer {spec.name}>", "exec"), namespace)  # noqa: S102
    writer: Writer = namespace[entry]
    return writer


# --- reading ------------------------------------------------------------------------------------


def read_long(d: bytes, p: int) -> tuple[int, int]:
    """An Avro ``long`` at ``d[p:]``: (value, next position)."""
    b = d[p]
    z = b & 0x7F
    shift = 7
    while b & 0x80:
        p += 1
        b = d[p]
        z |= (b & 0x7F) << shift
        shift += 7
        if shift > 70:
            raise MalformedAvroError("varint too long")
    return (z >> 1) ^ -(z & 1), p + 1


def read_string(d: bytes, p: int) -> tuple[str, int]:
    n, p = read_long(d, p)
    end = p + n
    if n < 0 or end > len(d):
        raise MalformedAvroError("string runs past the end")
    return d[p:end].decode(), end


def _union(d: bytes, p: int) -> bool:
    """True if the ``["null", T]`` union at ``d[p]`` holds a T."""
    b = d[p]
    if b == 2:
        return True
    if b == 0:
        return False
    raise MalformedAvroError(f"bad union index byte {b}")


_R_SCALAR = """
    if union(d, p):
        {value}
    else:
        p += 1"""

_R_STR = "o[{key!r}], p = rs(d, p + 1)"
_R_LONG = "o[{key!r}], p = rl(d, p + 1)"
_R_ANY = "s, p = rs(d, p + 1)\n        o[{key!r}] = loads(s)"
_R_BOOL = "o[{key!r}] = d[p + 1] == 1\n        p += 2"
_R_REC = "o[{key!r}], p = {func}(d, p + 1)"

_R_BLOCKS = """
    if union(d, p):
        c, p = rl(d, p + 1)
        v = {empty}
        while c:
            if c < 0:
                c = -c
                _, p = rl(d, p)
            for _ in range(c):
                {item}
            c, p = rl(d, p)
        o[{key!r}] = v
    else:
        p += 1"""

_R_REC_ITEM = "x, p = {func}(d, p)\n                v.append(x)"
_R_STR_ITEM = "x, p = rs(d, p)\n                v.append(x)"
_R_MAP_ITEM = "mk, p = rs(d, p)\n                v[mk], p = rs(d, p)"

_R_END = """
    if union(d, p):
        s, p = rs(d, p + 1)
        o.update(loads(s))
    else:
        p += 1
    return o, p
"""


def _generate_reader(rec: Rec, sources: dict[str, str]) -> str:
    func = f"r_{rec.name}"
    if rec.name in sources:
        return func
    sources[rec.name] = ""
    lines = [f"def {func}(d, p):", "    o = {}"]
    for key, kind in rec.fields:
        if isinstance(kind, Rec):
            value = _R_REC.format(key=key, func=_generate_reader(kind, sources))
            lines.append(_R_SCALAR.format(value=value))
        elif isinstance(kind, Arr):
            if isinstance(kind.items, Rec):
                item = _R_REC_ITEM.format(func=_generate_reader(kind.items, sources))
            else:
                item = _R_STR_ITEM
            lines.append(_R_BLOCKS.format(key=key, empty="[]", item=item))
        elif isinstance(kind, StrMap):
            lines.append(_R_BLOCKS.format(key=key, empty="{}", item=_R_MAP_ITEM))
        else:
            template = {STRING: _R_STR, BOOLEAN: _R_BOOL, LONG: _R_LONG, ANY: _R_ANY}
            lines.append(_R_SCALAR.format(value=template[str(kind)].format(key=key)))
    lines.append(_R_END)
    sources[rec.name] = "\n".join(lines)
    return func


def compile_reader(spec: Rec = EVENT_SPEC) -> Reader:
    """The reader of ``spec``'s record: ``reader(body, position)`` -> (Google JSON, position).

    Raises MalformedAvroError, IndexError or UnicodeDecodeError on bytes that are not a body.
    """
    sources: dict[str, str] = {}
    entry = _generate_reader(spec, sources)
    namespace: dict[str, Any] = {
        "union": _union,
        "rl": read_long,
        "rs": read_string,
        "loads": json.loads,
    }
    code = "\n\n".join(sources.values())
    exec(compile(code, f"<avro reader {spec.name}>", "exec"), namespace)  # noqa: S102
    reader: Reader = namespace[entry]
    return reader
