"""Watch channels: sync message, exists after changes, headers, stop, expiry, drops."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from connector.emulator.server import EmulatorServer
from tests.integration.emulator.conftest import event

pytestmark = pytest.mark.integration


class _Receiver:
    def __init__(self) -> None:
        self.got: queue.Queue[dict[str, str]] = queue.Queue()
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                assert self.rfile.read(length) == b""
                got.put(dict(self.headers.items()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def next(self) -> dict[str, str]:
        return self.got.get(timeout=5)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    rec = _Receiver()
    yield rec
    rec.close()


def _watch(service: Any, receiver: _Receiver, channel_id: str, **body: Any) -> dict[str, Any]:
    spec = {
        "id": channel_id,
        "type": "web_hook",
        "address": receiver.url,
        "token": "target=t1",
    } | body
    result: dict[str, Any] = service.events().watch(calendarId="primary", body=spec).execute()
    return result


def test_watch_sync_then_exists(
    emulator: EmulatorServer, service: Any, receiver: _Receiver
) -> None:
    channel = _watch(service, receiver, "chan-1")
    assert channel["kind"] == "api#channel" and channel["id"] == "chan-1"
    assert channel["expiration"] == str(1772442000000 + 604800 * 1000)
    assert channel["token"] == "target=t1"
    sync = receiver.next()
    assert sync["X-Goog-Resource-State"] == "sync" and sync["X-Goog-Message-Number"] == "1"
    assert sync["X-Goog-Channel-ID"] == "chan-1" and sync["X-Goog-Channel-Token"] == "target=t1"
    assert sync["X-Goog-Resource-ID"] == channel["resourceId"]
    assert sync["X-Goog-Channel-Expiration"] == "Mon, 09 Mar 2026 09:00:00 GMT"
    assert sync["X-Goog-Resource-URI"] == channel["resourceUri"]
    service.events().insert(
        calendarId="primary", body=event("A", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z")
    ).execute()
    exists = receiver.next()
    assert exists["X-Goog-Resource-State"] == "exists"
    assert int(exists["X-Goog-Message-Number"]) > 1


def test_ttl_and_requested_expiration(service: Any, receiver: _Receiver) -> None:
    short = _watch(service, receiver, "c-ttl", params={"ttl": "60"})
    assert short["expiration"] == str(1772442000000 + 60_000)
    asked = _watch(service, receiver, "c-exp", expiration=1772442000000 + 5000)
    assert asked["expiration"] == str(1772442000000 + 5000)


def test_stop_and_expiry(emulator: EmulatorServer, service: Any, receiver: _Receiver) -> None:
    channel = _watch(service, receiver, "c-stop")
    receiver.next()
    service.channels().stop(body={"id": "c-stop", "resourceId": channel["resourceId"]}).execute()
    with pytest.raises(HttpError) as exc:
        service.channels().stop(body={"id": "c-stop", "resourceId": "x"}).execute()
    assert exc.value.resp.status == 404
    _watch(service, receiver, "c-exp", params={"ttl": "10"})
    receiver.next()
    emulator.control.advance_clock(11)
    service.events().insert(
        calendarId="primary", body=event("A", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z")
    ).execute()
    with pytest.raises(queue.Empty):
        receiver.got.get(timeout=0.5)


def test_https_required_except_loopback(service: Any) -> None:
    with pytest.raises(HttpError) as exc:
        service.events().watch(
            calendarId="primary",
            body={"id": "c", "type": "web_hook", "address": "http://example.com/x"},
        ).execute()
    assert exc.value.resp.status == 400


def test_drop_all_notifications(
    emulator: EmulatorServer, service: Any, receiver: _Receiver
) -> None:
    emulator.control.set_push(drop_probability=1.0)
    _watch(service, receiver, "c-drop")
    with pytest.raises(queue.Empty):
        receiver.got.get(timeout=0.5)
    assert emulator.control.state()["push"]["dropped"] == 1


def test_calendar_list_watch(service: Any, receiver: _Receiver) -> None:
    spec = {"id": "cl-1", "type": "web_hook", "address": receiver.url}
    service.calendarList().watch(body=spec).execute()
    assert receiver.next()["X-Goog-Resource-State"] == "sync"
    service.calendars().insert(body={"summary": "New"}).execute()
    assert receiver.next()["X-Goog-Resource-State"] == "exists"
