"""The single-object codec writes EventKey without fastavro: the bytes must be fastavro's."""

from __future__ import annotations

from io import BytesIO

import fastavro
from hypothesis import given
from hypothesis import strategies as st

from connector.adapters.avro_codec import SingleObjectCodec, parse_schema, schema_fingerprint
from connector.adapters.avro_schemas import EVENT_KEY, load_schema

CODEC = SingleObjectCodec()
SCHEMA = load_schema(EVENT_KEY)
PREFIX = b"\xc3\x01" + schema_fingerprint(SCHEMA)
PARSED = parse_schema(SCHEMA)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["", "x" * 63, "x" * 64, "é" * 3000, "y" * 5000]
)


def fastavro_key(calendar_id: str, event_id: str | None) -> bytes:
    out = BytesIO()
    out.write(PREFIX)
    fastavro.schemaless_writer(out, PARSED, {"calendar_id": calendar_id, "event_id": event_id})
    return out.getvalue()


@given(TEXT, st.none() | TEXT)
def test_encode_key_writes_what_fastavro_writes(calendar_id: str, event_id: str | None) -> None:
    assert CODEC.encode_key(calendar_id, event_id) == fastavro_key(calendar_id, event_id)
    assert CODEC.decode_key(CODEC.encode_key(calendar_id, event_id)) == (calendar_id, event_id)


def test_keys_of_one_calendar_share_the_head_but_not_the_event() -> None:
    a = CODEC.encode_key("cal@example.com", "a")
    b = CODEC.encode_key("cal@example.com", "bb")
    marker = CODEC.encode_key("cal@example.com", None)
    assert a != b and a[:-3] == b[:-4] == marker[:-1]
    assert CODEC.decode_key(marker) == ("cal@example.com", None)
