"""The compiled ``CalendarEvent`` body writer (``_avro_body.pyx``), when it was built.

``native_writer(spec)`` returns ``writer(event) -> bytes`` or None if the extension is not
there (a build without a C compiler): the Python writers then do all the work. The writer raises
for anything but a plain event (an unknown key, a value of another type, a lone surrogate...):
``avro_shapes.SparseWriter`` catches that and writes the event itself, so the bytes are always
the Python writers' (tests compare them).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

from connector.core.mapping import ANY, BOOLEAN, EVENT_SPEC, LONG, STRING, Arr, Rec, StrMap

_avro_body: Any
try:
    _avro_body = importlib.import_module("connector.adapters._avro_body")
except ImportError:  # pragma: no cover - built without a C compiler
    _avro_body = None

NativeWriter = Callable[[dict[str, Any]], bytes]

_dumps = json.JSONEncoder(separators=(",", ":")).encode  # as avro_fastpath and avro_shapes


def available() -> bool:
    return _avro_body is not None


def native_writer(spec: Rec = EVENT_SPEC) -> NativeWriter | None:
    """The compiled writer of ``spec``'s record, or None when the extension is not built."""
    if _avro_body is None:
        return None
    records: dict[str, Any] = {}

    def record(rec: Rec) -> Any:
        found = records.get(rec.name)
        if found is not None:
            return found
        out = records[rec.name] = _avro_body.Record(_dumps)
        kinds = _avro_body.Kind
        for key, kind in rec.fields:
            if isinstance(kind, Rec):
                out.add(key, kinds.RECORD, record(kind))
            elif isinstance(kind, Arr) and isinstance(kind.items, Rec):
                out.add(key, kinds.RECORDS, record(kind.items))
            elif isinstance(kind, Arr):
                out.add(key, kinds.STRINGS)
            elif isinstance(kind, StrMap):
                out.add(key, kinds.STRING_MAP)
            else:
                scalar = {
                    STRING: kinds.STRING,
                    BOOLEAN: kinds.BOOLEAN,
                    LONG: kinds.LONG,
                    ANY: kinds.ANY,
                }
                out.add(key, scalar[str(kind)])
        return out

    writer: NativeWriter = _avro_body.BodyWriter(record(spec))
    return writer
