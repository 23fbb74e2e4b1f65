"""The composition root: build every piece from the settings and run the connector.

Order matters for exactly-once: the transactional producer is initialised (fencing any older
instance and aborting its open transaction) before the checkpoints and the published ids are
read back with read_committed, so what is read is final.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from connector.adapters.avro_codec import Codec, make_codec
from connector.adapters.google_auth import CredentialSpec, load_credentials
from connector.adapters.google_source import GoogleCalendarSource, RequestRecord
from connector.adapters.google_transport import SharedTransport
from connector.adapters.kafka_admin import TopicSpec, ensure_topics, topic_partitions
from connector.adapters.kafka_publisher import KafkaChangePublisher
from connector.adapters.kafka_records import RecordEncoder, TopicNames
from connector.adapters.kafka_state import read_checkpoints, read_published
from connector.adapters.metrics import HealthServer, PrometheusObserver
from connector.adapters.page_decoder import PageDecoder
from connector.adapters.webhook import WebhookServer
from connector.calendar_lists import CalendarListTask, ChannelStore, restore_channels, split_stored
from connector.channels import ChannelManager, ChannelSettings, StopRequest
from connector.config import Settings
from connector.config_load import redact_kafka_conf
from connector.core import push
from connector.core.records import Checkpoint, Trigger
from connector.core.sync import Published
from connector.errors import ConnectorError
from connector.gc_tuning import tune_garbage_collector
from connector.passes import StreamRuntime
from connector.service import SyncService
from connector.signals import SignalReader
from connector.streams import (
    AccountRef,
    StreamSpec,
    accounts_of,
    resolve_all,
    resolve_streams,
    unique_calendars,
)

log = logging.getLogger(__name__)


def topic_names(settings: Settings) -> TopicNames:
    t = settings.topics
    return TopicNames(t.name(t.events), t.name(t.checkpoints), t.name(t.dead_letter))


def kafka_conf(settings: Settings) -> dict[str, Any]:
    return {k: v for k, v in settings.kafka.items()}


def codec_for(settings: Settings) -> Codec:
    names = topic_names(settings)
    registry = settings.schema_registry
    conf: dict[str, str] = {}
    if registry.basic_auth_user_info is not None:
        conf["basic.auth.user.info"] = registry.basic_auth_user_info.get_secret_value()
    conf["auto.register.schemas"] = str(registry.auto_register_schemas).lower()
    conf["use.latest.version"] = str(registry.use_latest_version).lower()
    return make_codec(registry.url, conf, names.events, names.checkpoints)


def prepare_topics(settings: Settings) -> None:
    t = settings.topics
    specs = [
        TopicSpec(t.name(t.events), t.partitions, t.replication_factor, t.events_config),
        TopicSpec(
            t.name(t.checkpoints),
            t.partitions,
            t.replication_factor,
            {**t.checkpoints_config, "cleanup.policy": "compact"},
            must_be_compacted=True,
        ),
        TopicSpec(t.name(t.dead_letter), 1, t.replication_factor, t.dead_letter_config),
        TopicSpec(t.name(t.signals), 1, t.replication_factor, {"cleanup.policy": "delete"}),
    ]
    ensure_topics(kafka_conf(settings), specs, create=t.create)


def google_source(
    settings: Settings,
    account: AccountRef,
    on_request: Callable[[RequestRecord], None] | None = None,
    transport: SharedTransport | None = None,
) -> GoogleCalendarSource:
    creds = account.settings.credentials
    spec = CredentialSpec(
        kind=creds.kind,
        path=creds.path,
        subject=account.subject,
        scopes=tuple(creds.scopes),
        token_uri=settings.google.token_uri,
    )
    return GoogleCalendarSource(
        load_credentials(spec),
        api_endpoint=settings.google.api_endpoint,
        quota_user=account.subject,
        timeout=settings.google.request_timeout_seconds,
        on_request=on_request,
        transport=transport,
    )


def google_transport(
    settings: Settings, observer: PrometheusObserver | None = None
) -> SharedTransport:
    """The connections every account's source shares, and the page decoding processes."""
    processes = settings.decode_processes
    on_page = observer.page_decoded if observer else None
    return SharedTransport(
        timeout=settings.google.request_timeout_seconds,
        pages=PageDecoder(processes, on_page=on_page) if processes > 0 else None,
    )


@dataclass
class Connector:
    settings: Settings
    service: SyncService
    publisher: KafkaChangePublisher
    signals: SignalReader
    sources: dict[str, GoogleCalendarSource]
    channels: ChannelManager | None = None
    webhook: WebhookServer | None = None
    observer: PrometheusObserver | None = None
    pages: PageDecoder | None = None

    def tick(self) -> None:
        """Called from the main loop: operator signals."""
        self.signals.poll()

    def stop_listening(self) -> None:
        """First step of a shutdown: no more notifications are accepted."""
        if self.webhook is not None:
            self.webhook.stop()
            self.webhook = None

    def close(self) -> None:
        """After the loop stopped: release the consumer, the producer and the HTTP sockets."""
        self.stop_listening()
        if self.channels is not None:
            self.channels.drain()
        self.signals.close()
        self.publisher.close()
        for source in self.sources.values():
            source.close()
        if self.pages is not None:
            self.pages.close()


def make_channels(
    settings: Settings,
    sources: Mapping[str, GoogleCalendarSource],
    runtimes: list[StreamRuntime],
    checkpoints: Mapping[str, Checkpoint],
    observer: PrometheusObserver | None,
    list_tasks: list[CalendarListTask],
) -> ChannelManager:
    """The push-channel registry, loaded from the checkpoints; dropped streams' channels stop."""
    webhook = settings.webhook
    secret = webhook.secret.get_secret_value().encode() if webhook.secret else b""

    def stop(request: StopRequest) -> None:
        stream_id, channel_id, resource_id = request
        # Stream ids are "<account>/<calendar id>" and account names never contain "/".
        source = sources.get((stream_id or "").split("/", 1)[0])
        if source is None:
            log.warning(
                "cannot stop a channel: its account is not configured", extra={"stream": stream_id}
            )
            return
        source.stop_channel(channel_id, resource_id)
        log.info("push channel stopped", extra={"stream": stream_id})

    outcome = {push.Action.REJECT: "rejected", push.Action.STOP: "unknown_channel"}

    def decided(decision: push.Decision) -> None:
        if observer is not None:
            observer.push_notification(outcome.get(decision.action, decision.reason))
        if decision.action is push.Action.REJECT:
            log.warning(
                "push notification refused: %s",
                decision.reason,
                extra={"stream": decision.stream_id},
            )

    channels = ChannelManager(
        ChannelSettings(
            secret,
            webhook.public_url or "",
            webhook.channel_ttl_seconds,
            webhook.renew_before_seconds,
        ),
        stop,
        on_decision=decided,
    )
    live = {rt.spec.ref.stream_id for rt in runtimes}
    now_ms = time.time_ns() // 1_000_000
    for rt in runtimes:
        channel = rt.committed.channel if rt.committed else None
        channels.add_stream(rt.spec.ref.stream_id, channel)
        if observer is not None and channel is not None:
            state = "open" if channel.expiration_ms > now_ms else "expired"
            observer.channel_state(rt.spec.ref.stream_id, state, channel.expiration_ms)
    for task in list_tasks:
        channels.add_stream(task.id, None)
    for stream_id, cp in checkpoints.items():
        if stream_id not in live and cp.channel is not None:
            channels.retire(stream_id, cp.channel)  # the stream was dropped from the config
    return channels


def start_webhook(
    settings: Settings, channels: ChannelManager, service: SyncService
) -> WebhookServer:
    def handle(headers: Mapping[str, str]) -> push.Decision:
        decision = channels.on_notification(headers)
        if decision.action is push.Action.SYNC and decision.stream_id is not None:
            service.trigger(decision.stream_id, Trigger.PUSH)
        return decision

    server = WebhookServer(settings.webhook.host, settings.webhook.port, handle)
    server.start()
    log.info("webhook listening", extra={"port": server.port})
    return server


def build(settings: Settings, observer: PrometheusObserver | None = None) -> Connector:
    """Everything up to (not including) the main loop; raises ConnectorError on failure."""
    names = topic_names(settings)
    conf = kafka_conf(settings)
    log.info("starting", extra={"kafka": redact_kafka_conf(conf), "topics": names.events})
    prepare_topics(settings)
    codec = codec_for(settings)
    publisher = KafkaChangePublisher(
        conf,
        transactional_id=settings.name,
        checkpoints_topic=names.checkpoints,
        mode=settings.delivery.mode,
        transaction_timeout_ms=settings.delivery.transaction_timeout_ms,
        on_commit=observer.transaction if observer else None,
        stats_cb=observer.librdkafka_stats if observer else None,
    )
    publisher.start()
    on_request = (
        (lambda r: observer.google_request(r.method, r.status, r.duration_s)) if observer else None
    )
    accounts = accounts_of(settings)
    transport = google_transport(settings, observer)
    if transport.pages is not None:
        transport.pages.start()
    sources = {a.name: google_source(settings, a, on_request, transport) for a in accounts}
    specs: list[StreamSpec] = []
    unresolved: set[str] = set()
    release = [s.transport.release_thread for s in sources.values()]  # no-op if unused
    listed = resolve_all(settings, accounts, sources, lambda: [r() for r in release])
    for account, found in zip(accounts, listed, strict=True):
        if isinstance(found, ConnectorError):
            # Retried by its calendar-list task, which adds the streams once it works.
            unresolved.add(account.name)
            log.error("cannot list the calendars: %s", found, extra={"account": account.name})
            if observer is not None:
                observer.account_state(account.name, "auth_error")
        else:
            specs.extend(found)
    specs = unique_calendars(specs)
    checkpoints, list_channels = split_stored(read_checkpoints(conf, names.checkpoints, codec))
    generations = {
        s.ref.stream_id: checkpoints[s.ref.stream_id].generation
        for s in specs
        if s.ref.stream_id in checkpoints
    }
    published = read_published(conf, names.events, codec, generations)
    runtimes = [
        StreamRuntime(
            spec,
            checkpoints.get(spec.ref.stream_id),
            published.get(spec.ref.stream_id, Published()),
        )
        for spec in specs
    ]
    log.info("restored state", extra={"streams": len(runtimes), "checkpoints": len(checkpoints)})
    encoder = RecordEncoder(codec, names, topic_partitions(conf, names.events))
    list_store = ChannelStore(publisher, encoder)
    list_tasks = [
        CalendarListTask(
            account,
            sources[account.name],
            functools.partial(resolve_streams, settings, account, sources[account.name]),
            settings.calendar_list_refresh_seconds,
            store=list_store,
        )
        for account in accounts
        if account.settings.calendars == "all" or account.name in unresolved
    ]
    channels = (
        make_channels(settings, sources, runtimes, checkpoints, observer, list_tasks)
        if settings.webhook.enabled
        else None
    )
    if channels is not None:  # without push, stored calendarList channels are left as they are
        restore_channels(list_tasks, list_channels, channels, list_store)
    service = SyncService(
        streams=runtimes,
        sources=sources,
        publisher=publisher,
        encoder=encoder,
        workers=settings.workers,
        tombstones=settings.delivery.tombstones,
        account_budget=settings.google.requests_per_minute_per_account,
        global_budget=settings.google.requests_per_minute,
        observer=observer,
        channels=channels,
        healthy_poll_seconds=settings.webhook.healthy_poll_seconds,
        list_tasks=list_tasks,
        stored={sid: cp for sid, cp in checkpoints.items() if sid not in generations},
    )
    webhook = None
    if channels is not None:
        webhook = start_webhook(settings, channels, service)
    if observer is not None:
        observer.streams_known(
            [s.ref.stream_id for s in specs], {s.ref.stream_id: s.account.name for s in specs}
        )
    runtimes_by_id = service.runtimes
    signals = SignalReader(
        conf,
        settings.topics.name(settings.topics.signals),
        f"{settings.name}-signals",
        service.request_resync,
        lambda s: s in runtimes_by_id and runtimes_by_id[s].operator_reset,
    )
    return Connector(
        settings, service, publisher, signals, sources, channels, webhook, observer, transport.pages
    )


def run(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; exit 0 after a clean stop."""
    observer = PrometheusObserver(stream_labels=settings.metrics.stream_labels)
    state: dict[str, Connector] = {}

    def is_ready() -> bool:
        built = state.get("connector")
        return built is not None and built.publisher.connected

    health = None
    if settings.metrics.enabled:
        health = HealthServer(observer, settings.metrics.host, settings.metrics.port, is_ready)
        health.start()
        log.info("metrics on http://%s:%d/metrics", settings.metrics.host, health.port)
    try:
        connector = build(settings, observer)
    except BaseException:
        if health is not None:
            health.stop()
        raise
    state["connector"] = connector
    tune_garbage_collector()
    stopped = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received: stopping", signal.Signals(signum).name)
        stopped.set()
        connector.stop_listening()
        connector.service.stop()

    previous: Mapping[int, Any] = {
        sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        connector.service.run(poll=connector.tick)
    finally:
        connector.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if health is not None:
            health.stop()
    log.info("stopped cleanly")
    return 0
