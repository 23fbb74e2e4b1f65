"""Push notifications end to end: the emulator POSTs to the connector's webhook over HTTP.

Polls are set to an hour, so anything that arrives quickly arrived by push (or by the safety
poll where a test makes that short on purpose).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector import wiring
from connector.adapters.kafka_state import read_checkpoints
from connector.config import Settings
from connector.core import push
from connector.core.records import Trigger
from connector.emulator.server import EmulatorServer
from tests.integration.engine import (
    RunningConnector,
    credentials_file,
    dataset,
    event,
    google,
    in_sync,
    observed,
    ops,
    resets_done,
    settings_for,
    wait_for,
)
from tests.integration.test_crash_recovery import check_stream

pytestmark = pytest.mark.integration
ALICE = "alice@example.com"
SECRET = "integration-secret-0123456789"
STREAM = f"alice/{ALICE}"
LIST_TASK = "alice/#calendarList"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def push_settings(
    bootstrap: str, prefix: str, emulator: EmulatorServer, tmp_path: Path, **webhook: Any
) -> Settings:
    port = free_port()
    return settings_for(
        bootstrap,
        prefix,
        emulator,
        tmp_path,
        sync={"poll_interval_seconds": 3600},
        webhook={
            "enabled": True,
            "host": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}/notifications",
            "secret": SECRET,
            **webhook,
        },
    )


def channel_of(running: RunningConnector) -> Any:
    committed = running.service.runtimes[STREAM].committed
    return committed.channel if committed is not None else None


def post(settings: Settings, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        settings.webhook.public_url or "", data=b"", headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def list_calls(emulator: EmulatorServer) -> int:
    return sum(1 for r in emulator.control.requests() if r.get("route") == "events.list")


def test_a_change_arrives_by_push_and_forged_or_replayed_notifications_change_nothing(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("push1", "One")]}))
    settings = push_settings(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    with RunningConnector(settings) as running:
        wait_for(lambda: channel_of(running) is not None, what="a push channel")
        channel = channel_of(running)
        assert channel.id.startswith("gk-") and channel.resource_id
        google(emulator).events().patch(
            calendarId=ALICE, eventId="push1", body={"summary": "pushed"}
        ).execute()
        wait_for(in_sync(settings, emulator, ALICE), timeout=20, what="the change, by push")
        time.sleep(1)
        before = list_calls(emulator)
        token = push.channel_token(SECRET.encode(), channel.id)
        base = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-State": "exists",
            "X-Goog-Channel-Token": token,
        }
        assert (
            post(
                settings,
                {**base, "X-Goog-Message-Number": "999999", "X-Goog-Channel-Token": "forged"},
            )
            == 403
        )
        assert (
            post(
                settings,
                {**base, "X-Goog-Message-Number": "999999", "X-Goog-Resource-ID": "someone-else"},
            )
            == 403
        )
        assert post(settings, {**base, "X-Goog-Message-Number": "1"}) == 409  # replayed
        assert post(settings, {"X-Goog-Channel-ID": channel.id}) == 400
        time.sleep(2)
        assert list_calls(emulator) == before  # nothing was synced for them
    assert Counter(ops(observed(settings)))[("UPDATED", "push1", 1)] == 1


def test_dropped_notifications_are_caught_up_by_the_safety_poll(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("drop1", "One")]}))
    settings = push_settings(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, healthy_poll_seconds=3
    )
    with RunningConnector(settings) as running:
        wait_for(lambda: channel_of(running) is not None, what="a push channel")
        emulator.control.set_push(drop_probability=1.0)
        api = google(emulator).events()
        for i in range(5):
            api.insert(calendarId=ALICE, body=event(f"drop{i + 2}", f"Dropped {i}")).execute()
        wait_for(in_sync(settings, emulator, ALICE), timeout=30, what="the safety poll")


def test_channels_are_renewed_before_expiry_without_missing_a_change(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("renew1", "One")]}))
    settings = push_settings(
        kafka_bootstrap,
        topic_prefix,
        emulator,
        tmp_path,
        channel_ttl_seconds=60,
        renew_before_seconds=56,
    )
    with RunningConnector(settings) as running:
        wait_for(lambda: channel_of(running) is not None, what="a push channel")
        first = channel_of(running)
        wait_for(lambda: channel_of(running).id != first.id, timeout=30, what="a renewal")
        second = channel_of(running)
        live = {c["id"] for c in emulator.control.state()["push"]["channels"]}
        wait_for(
            lambda: first.id not in {c["id"] for c in emulator.control.state()["push"]["channels"]},
            timeout=15,
            what="the old channel to be stopped",
        )
        assert second.id in live
        google(emulator).events().patch(
            calendarId=ALICE, eventId="renew1", body={"summary": "after renewal"}
        ).execute()
        wait_for(in_sync(settings, emulator, ALICE), timeout=20, what="the change after renewal")


def test_a_restart_keeps_its_channel_and_a_stray_one_is_stopped(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("keep1", "One")]}))
    settings = push_settings(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    with RunningConnector(settings) as running:
        wait_for(lambda: channel_of(running) is not None, what="a push channel")
        kept = channel_of(running)
    with RunningConnector(settings) as running:
        wait_for(resets_done(settings, 1))
        wait_for(lambda: running.service.runtimes[STREAM].state == "ok", what="a pass")
        assert channel_of(running).id == kept.id  # restored from the checkpoint, not reopened
        # A notification signed by us for a channel we no longer track: 404, and it is stopped.
        stray = push.new_channel_id(STREAM, "stray")
        code = post(
            settings,
            {
                "X-Goog-Channel-ID": stray,
                "X-Goog-Resource-ID": "res-stray",
                "X-Goog-Resource-State": "exists",
                "X-Goog-Message-Number": "3",
                "X-Goog-Channel-Token": push.channel_token(SECRET.encode(), stray),
            },
        )
        assert code == 404
        wait_for(
            lambda: any(r.get("route") == "channels.stop" for r in emulator.control.requests()),
            what="the stray stop",
        )


def test_all_calendars_mode_follows_the_calendar_list_by_push(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("mine1", "Mine")]}))
    settings = push_settings(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    settings = settings.model_copy(
        update={
            "calendar_list_refresh_seconds": 3600.0,
            "accounts": (settings.accounts[0].model_copy(update={"calendars": "all"}),),
        }
    )
    with RunningConnector(settings) as running:
        wait_for(resets_done(settings, 1), what="the first calendar's full sync")
        wait_for(
            lambda: any(
                c["kind"] == "calendarList" for c in emulator.control.state()["push"]["channels"]
            ),
            what="the calendarList channel",
        )
        api = google(emulator)
        created = api.calendars().insert(body={"summary": "Project X"}).execute()
        new_id = created["id"]
        api.events().insert(calendarId=new_id, body=event("proj1", "Kick-off")).execute()
        new_stream = f"alice/{new_id}"
        wait_for(
            lambda: new_stream in running.service.runtimes,
            timeout=20,
            what="the new calendar to become a stream",
        )
        wait_for(in_sync(settings, emulator, new_id), timeout=20, what="its full sync")
        api.calendars().delete(calendarId=new_id).execute()
        wait_for(
            lambda: running.service.runtimes[new_stream].state in ("removed", "gone"),
            timeout=20,
            what="the removed calendar's stream to go",
        )
        wait_for(resets_done(settings, 3), what="its empty generation")
    records = observed(settings)
    gone = [
        r.change
        for r in records
        if r.calendar_id == new_id and r.change is not None and r.change.op.value == "RESET_BEGIN"
    ]
    assert [g.reason.value for g in gone if g.reason] == ["INITIAL", "CALENDAR_GONE"]


def test_a_revoked_account_does_not_slow_the_others(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    bob = "bob@example.com"
    data = dataset({ALICE: [event("alic1", "A")]})
    data["users"].append(dataset({bob: [event("bob11", "B")]}, email=bob)["users"][0])
    emulator.control.seed(data)
    settings = push_settings(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    alice_account = settings.accounts[0].model_copy(update={"calendars": (ALICE,)})
    bob_account = settings.accounts[0].model_copy(
        update={
            "name": "bob",
            "calendars": (bob,),
            "credentials": settings.accounts[0].credentials.model_copy(
                update={"path": credentials_file(tmp_path, bob)}
            ),
        }
    )
    settings = settings.model_copy(update={"accounts": (alice_account, bob_account)})
    emulator.control.revoke_user(ALICE)
    started = time.monotonic()
    with RunningConnector(settings) as running:
        wait_for(
            lambda: running.service.runtimes[f"bob/{bob}"].state == "ok",
            timeout=20,
            what="bob's full sync",
        )
        google(emulator, bob).events().patch(
            calendarId=bob, eventId="bob11", body={"summary": "B2"}
        ).execute()
        wait_for(in_sync(settings, emulator, bob, bob), timeout=20, what="bob's change by push")
        assert time.monotonic() - started < 30
        alice = running.service.runtimes[STREAM]
        assert alice.state == "auth_error"
        # Retried slowly, as an account: a long pause, not a tight loop of failing calls.
        assert running.service._scheduler.paused_until("alice") - time.monotonic() > 300
    assert not [r for r in observed(settings) if r.calendar_id == ALICE]


def test_sigterm_during_a_notification_burst_leaves_a_clean_checkpoint(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event(f"b{i:04d}", f"B{i}") for i in range(50)]}))
    settings = push_settings(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    config = tmp_path / "config.yaml"
    raw = settings.model_dump(mode="json", exclude_none=True)
    raw["webhook"]["secret"] = SECRET
    config.write_text(yaml.safe_dump(raw))
    log = (tmp_path / "connector.log").open("wb")
    command = [sys.executable, "-m", "connector.cli", "run", "--config", str(config)]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(resets_done(settings, 1), what="the first full sync")
        wait_for(lambda: emulator.control.state()["push"]["channels"], what="a channel")
        api = google(emulator).events()
        for i in range(60):
            api.patch(
                calendarId=ALICE, eventId=f"b{i % 50:04d}", body={"summary": f"burst {i}"}
            ).execute()
            if i == 30:
                proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    with RunningConnector(settings):
        wait_for(in_sync(settings, emulator, ALICE), timeout=30, what="the rest after restart")
    check_stream(observed(settings))


def test_an_account_that_cannot_resolve_primary_at_start_is_retried_until_it_works(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("late1", "Late")]}))
    settings = push_settings(kafka_bootstrap, topic_prefix, emulator, tmp_path)  # "primary"
    emulator.control.revoke_user(ALICE)
    with RunningConnector(settings) as running:
        assert STREAM not in running.service.runtimes  # primary could not be resolved
        emulator.control.restore_user(ALICE)  # the operator fixed the credentials
        task = running.service._list_tasks["alice/#calendarList"]
        running.service._scheduler.pause_account("alice", 0)
        running.service.trigger(task.id, Trigger.POLL)
        wait_for(lambda: STREAM in running.service.runtimes, timeout=30, what="the retry")
        wait_for(in_sync(settings, emulator, ALICE), timeout=30, what="its full sync")


def all_calendars(settings: Settings, **webhook: Any) -> Settings:
    """The same connector (same webhook port) following alice's calendar list."""
    return settings.model_copy(
        update={
            "calendar_list_refresh_seconds": 3600.0,
            "accounts": (settings.accounts[0].model_copy(update={"calendars": "all"}),),
            "webhook": settings.webhook.model_copy(update=webhook),
        }
    )


def list_channel_ids(emulator: EmulatorServer) -> list[str]:
    channels = emulator.control.state()["push"]["channels"]
    return [c["id"] for c in channels if c["kind"] == "calendarList"]


def stored_list_channel(settings: Settings) -> Any:
    """alice's calendarList channel as stored on the checkpoint topic, or None."""
    found = read_checkpoints(
        settings.kafka, wiring.topic_names(settings).checkpoints, wiring.codec_for(settings)
    )
    record = found.get(LIST_TASK)
    return record.channel if record is not None else None


def list_task_channel(running: RunningConnector) -> Any:
    return running.service._list_tasks[LIST_TASK].channel


def test_a_restart_in_all_calendars_mode_keeps_its_calendar_list_channel(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("list1", "Mine")]}))
    explicit = push_settings(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    settings = all_calendars(explicit)
    with RunningConnector(settings) as running:
        wait_for(lambda: list_task_channel(running) is not None, what="the calendarList channel")
        kept = list_task_channel(running)
    assert stored_list_channel(settings) == kept
    emulator.control.clear_requests()
    with RunningConnector(settings) as running:
        assert list_task_channel(running) == kept  # restored before the webhook listens

        def listed() -> int:
            requests = emulator.control.requests()
            return sum(1 for r in requests if r.get("route") == "calendarList.list")

        # One listing at start-up, one by the task's first run (which keeps the channel).
        wait_for(lambda: listed() >= 2, what="the calendar-list task's first run")
        wait_for(resets_done(settings, 1))
        time.sleep(1.5)
        routes = {r.get("route") for r in emulator.control.requests()}
        assert "calendarList.watch" not in routes and "channels.stop" not in routes
        assert list_channel_ids(emulator) == [kept.id]
        assert list_task_channel(running) == kept
        # The refresh is hourly: only a notification on the kept channel can reveal this.
        api = google(emulator)
        new_id = api.calendars().insert(body={"summary": "After restart"}).execute()["id"]
        api.events().insert(calendarId=new_id, body=event("late1", "Late")).execute()
        wait_for(
            lambda: f"alice/{new_id}" in running.service.runtimes,
            timeout=20,
            what="the new calendar, noticed by push on the restored channel",
        )
        wait_for(in_sync(settings, emulator, new_id), timeout=20, what="its full sync")
        assert list_channel_ids(emulator) == [kept.id]
    # Back to explicit calendars: the channel is stopped and its record tombstoned.
    with RunningConnector(explicit) as running:
        assert LIST_TASK not in running.service._list_tasks
        wait_for(lambda: list_channel_ids(emulator) == [], what="the calendarList channel stop")
        assert stored_list_channel(explicit) is None


def test_an_expiring_stored_calendar_list_channel_is_replaced_and_the_old_one_stopped(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("exp1", "One")]}))
    base = push_settings(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    first = all_calendars(base, channel_ttl_seconds=600, renew_before_seconds=60)
    with RunningConnector(first) as running:
        wait_for(lambda: list_task_channel(running) is not None, what="the calendarList channel")
        old = list_task_channel(running)
    # With a 599 s margin the stored channel (600 s) is due one second after it opened.
    later = all_calendars(base, channel_ttl_seconds=3600, renew_before_seconds=599)
    wait_for(lambda: time.time() * 1000 > old.expiration_ms - 599_000 + 500)
    with RunningConnector(later) as running:
        wait_for(
            lambda: list_task_channel(running) not in (None, old), what="the channel's renewal"
        )
        new = list_task_channel(running)
        wait_for(lambda: list_channel_ids(emulator) == [new.id], what="the old channel stop")
        assert stored_list_channel(later) == new
        api = google(emulator)
        new_id = api.calendars().insert(body={"summary": "After renewal"}).execute()["id"]
        wait_for(
            lambda: f"alice/{new_id}" in running.service.runtimes,
            timeout=20,
            what="the new calendar, noticed by push on the new channel",
        )
