"""``kafka_state.end_offsets`` rides out the moment after a broker restart (a fake admin client:
the real broker cannot be made to answer UNKNOWN_LEADER_EPOCH on demand)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.adapters import kafka_state


class FakeAdmin:
    """Answers ``list_offsets`` with the scripted errors first, then with offset 7."""

    errors: list[int] = []
    calls = 0

    def __init__(self, _conf: dict[str, Any]) -> None:
        pass

    def list_offsets(self, request: dict[TopicPartition, Any], **_kw: Any) -> dict[Any, Any]:
        FakeAdmin.calls += 1
        out: dict[TopicPartition, Future[Any]] = {}
        for tp in request:
            future: Future[Any] = Future()
            if FakeAdmin.errors:
                future.set_exception(KafkaException(KafkaError(FakeAdmin.errors[0])))
            else:
                future.set_result(type("Info", (), {"offset": 7})())
            out[tp] = future
        if FakeAdmin.errors:
            FakeAdmin.errors.pop(0)
        return out


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> type[FakeAdmin]:
    monkeypatch.setattr(kafka_state, "AdminClient", FakeAdmin)
    monkeypatch.setattr(kafka_state.time, "sleep", lambda _s: None)
    FakeAdmin.calls = 0
    return FakeAdmin


def test_a_transient_leader_epoch_error_is_asked_again(admin: type[FakeAdmin]) -> None:
    admin.errors = [KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.NOT_LEADER_FOR_PARTITION]
    ends = kafka_state.end_offsets({}, "t", [0, 1], "read_committed")
    assert ends == {0: 7, 1: 7} and admin.calls == 3


def test_a_lasting_error_is_raised(admin: type[FakeAdmin]) -> None:
    admin.errors = [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    with pytest.raises(KafkaException):
        kafka_state.end_offsets({}, "t", [0], "read_committed")
    assert admin.calls == 1
