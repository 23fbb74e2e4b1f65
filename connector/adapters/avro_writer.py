"""A fast Avro binary writer: Google Event JSON straight to ``CalendarEvent`` bytes.

fastavro spends most of its time choosing union branches, and every field of ``CalendarEvent``
is a union, so it writes only a few thousand events per second. This module generates, once, a
Python function per record of ``EVENT_SPEC`` that writes the Avro body directly from the Google
JSON, fusing ``to_calendar_event`` and the encoding into one pass. Its output is byte for byte
what fastavro writes for ``to_calendar_event(item)`` (a property test checks it).
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
