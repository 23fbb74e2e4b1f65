"""Large ``events.list`` pages decoded, and their events' Avro bodies written, in other processes.

A full sync's Python work per event (decode the page's JSON, write the 47-field ``CalendarEvent``
body, build the envelope, produce) all ran under one GIL, which capped the connector near one
core however many calendars it fetched at once. Decoding and the body are the two biggest parts
and need nothing from the connector's state, so a page of at least ``min_bytes`` goes, as the raw
bytes Google sent, to a process of a small pool (``decode_processes``). There, ``prepare_page``
decodes it and turns each event into a ``PreparedEvent``: the few fields the sync core reads
(``FACT_KEYS``) and the finished Avro body. The worker thread gets the page back ready for
``apply_page``, and ``ChangeWriter`` copies each body instead of writing it.

A ``PreparedEvent`` is a read-only ``Mapping`` of the whole Google event: any other key is read
from its Avro body (decoded once, on first use), so code that wants the full event (a Schema
Registry writer schema other than ours, say) still sees exactly what Google sent.

Everything a worker process might read differently from the in-thread path is left to it: a page
that orjson would not read exactly as ``json`` does (``fast_loads``) comes back as None and is
decoded in the thread; an item without a string ``id`` and ``etag``, or whose body cannot be
written, stays a plain dict. If a process dies, the page is decoded in the thread and the pool
is started again.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import orjson

from connector.adapters.avro_fastpath import Reader, Writer, compile_reader
from connector.adapters.avro_shapes import SparseWriter
from connector.gc_tuning import tune_garbage_collector

log = logging.getLogger(__name__)

# What the sync core reads of an item (``connector.core.mapping`` and ``sync.version_of``).
FACT_KEYS = frozenset({"id", "etag", "status", "recurringEventId", "updated"})
EVENTS_KIND = "calendar#events"
MIN_BYTES = 64 * 1024  # below this, the round trip to another process is not worth it
PARENT_CHECK_SECONDS = 1.0

# Every byte to a space except digits to "0": a run of 19 digits marks a possible integer beyond
# 64 bits, which orjson would turn into a float (1.2345678901234568e+29) where json keeps an int.
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_DIGITS = b"0" * 19


class NotFast(ValueError):
    """orjson might read these bytes differently from ``json``: decode them with ``json``."""


def fast_loads(content: bytes) -> Any:
    """``json.loads(content)`` computed by orjson; raises NotFast where the two could differ.

    They differ on integers beyond 64 bits (a run of 19 or more digits anywhere: the scan costs
    about 2 ms per 2.7 MB page), lone surrogate escapes and numbers beyond a double (orjson
    refuses both).
    """
    if content.translate(_DIGITS).find(_LONG_DIGITS) >= 0:
        raise NotFast("a run of 19 or more digits")
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise NotFast(str(exc)) from None


@functools.cache
def _body_reader() -> Reader:
    return compile_reader()


@functools.cache
def _body_writer() -> Writer:
    return SparseWriter().write


class PreparedEvent(Mapping[str, Any]):
    """A Google event as a worker process left it: the core's fields and the Avro body.

    ``get`` of a ``FACT_KEYS`` key costs a dict lookup; anything else decodes the body once
    into the full event: the same JSON Google sent (the reader round-trips the writer), its keys
    in the schema's order rather than Google's.
    """

    __slots__ = ("_facts", "_full", "avro_body")

    def __init__(self, facts: dict[str, Any], avro_body: bytes) -> None:
        self._facts = facts
        self.avro_body = avro_body
        self._full: dict[str, Any] | None = None

    def full(self) -> dict[str, Any]:
        """The whole event, decoded from the body (once)."""
        full = self._full
        if full is None:
            full, _ = _body_reader()(self.avro_body, 0)
            self._full = full
        return full

    def get(self, key: str, default: Any = None) -> Any:
        if key in FACT_KEYS:
            return self._facts.get(key, default)
        return self.full().get(key, default)

    def __contains__(self, key: object) -> bool:
        if key in FACT_KEYS:
            return key in self._facts
        return key in self.full()

    def __getitem__(self, key: str) -> Any:
        return self.full()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.full())

    def __len__(self) -> int:
        return len(self.full())

    def __repr__(self) -> str:  # never the event's content: logs must not carry event bodies
        return f"PreparedEvent(id={self._facts.get('id')!r}, {len(self.avro_body)} body bytes)"


# -- in the worker process ----------------------------------------------------------------------
def _init_process(parent: int) -> None:
    """A decoding process: Ctrl-C is the parent's to handle; collect garbage as the parent does
    (a page is ~75,000 containers alive at once); exit when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_garbage_collector(freeze=False)
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    """Exit once ``parent`` is gone. A process killed with SIGKILL (an OOM kill, say) cannot
    stop its pool, and the pool's queue does not tell its processes: they would wait forever."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _warm_up() -> None:
    """Compile the body writer before the first page arrives."""
    _body_writer()


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """An events page as a decoding process sends it back: four objects, cheap to pickle.

    (Pickling the page as a list of ``PreparedEvent`` cost a fifth of the process's time: the
    pickler memoizes every object.) ``head`` is the page as JSON, its ``items`` replaced, for
    each item ``prepared`` marks (``1``), by the item's ``FACT_KEYS``; other items are there as
    they are. ``bodies`` holds the marked items' Avro bodies end to end, ``ends`` where each ends.
    """

    head: bytes
    prepared: bytes
    bodies: bytes
    ends: list[int]

    def page(self) -> dict[str, Any]:
        """The page, with its prepared items as ``PreparedEvent`` (in the connector)."""
        page: dict[str, Any] = orjson.loads(self.head)
        bodies = self.bodies
        ends = iter(self.ends)
        start = 0
        items = []
        for entry, prepared in zip(page["items"], self.prepared, strict=True):
            if prepared:
                end = next(ends)
                items.append(PreparedEvent(entry, bodies[start:end]))
                start = end
            else:
                items.append(entry)
        page["items"] = items
        return page


def _prepare_items(page: dict[str, Any], items: list[Any]) -> PreparedPage:
    write = _body_writer()
    entries: list[Any] = []
    prepared = bytearray()
    bodies = bytearray()
    ends = []
    for item in items:
        if type(item) is dict and type(item.get("id")) is str and type(item.get("etag")) is str:
            mark = len(bodies)
            try:
                write(item, bodies)
            except Exception:  # the thread's writer will meet the same problem and report it
                del bodies[mark:]
            else:
                entries.append({k: item[k] for k in FACT_KEYS if k in item})
                prepared.append(1)
                ends.append(len(bodies))
                continue
        # Not a dict, or no string id or etag: the core decides (a dead letter, a version
        # from the content). orjson writes back exactly what it read.
        entries.append(item)
        prepared.append(0)
    page["items"] = entries
    return PreparedPage(orjson.dumps(page), bytes(prepared), bytes(bodies), ends)


def prepare_page(content: bytes) -> Any:
    """The decoded response (an events page as a ``PreparedPage``); None when the bytes must
    be decoded by ``json`` instead (``fast_loads``)."""
    try:
        page = fast_loads(content)
    except NotFast:
        return None
    if type(page) is not dict or page.get("kind") != EVENTS_KIND:
        return page
    items = page.get("items")
    if type(items) is not list:
        return page
    return _prepare_items(page, items)


# -- in the connector -----------------------------------------------------------------------------
class PageDecoder:
    """A pool of ``processes`` decoding processes, started on the first page that needs one."""

    def __init__(
        self,
        processes: int,
        *,
        min_bytes: int = MIN_BYTES,
        on_page: Callable[[str], None] | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.processes = processes
        self.min_bytes = min_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0  # pools replaced after a process died
        self.decoded = 0  # pages decoded by a process
        # Called per page: "process", "thread" (decoded in the worker thread instead) or
        # "restart" (the same, because a process died).
        self._on_page = on_page or (lambda by: None)

    def _current(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._pool is None and not self._closed:
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),  # threads run here: no fork
                    initializer=_init_process,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def start(self) -> None:
        """Start the processes now, in the background (they take ~0.15 s of CPU to import),
        so that the first large page does not wait for them."""
        pool = self._current()
        if pool is not None:
            for _ in range(self.processes):
                pool.submit(_warm_up)

    def decode(self, content: bytes) -> Any:
        """``prepare_page(content)`` in a decoding process; None: decode it in this thread."""
        pool = self._current()
        if pool is None:
            return None
        try:
            page = pool.submit(prepare_page, content).result()
        except BrokenProcessPool:
            self._replace(pool)
            self._on_page("restart")
            return None
        except RuntimeError:  # the pool is being shut down (the connector is stopping)
            return None
        if page is None:
            self._on_page("thread")  # json might read it differently from orjson
            return None
        with self._lock:
            self.decoded += 1
        self._on_page("process")
        return page.page() if type(page) is PreparedPage else page

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken:
                return  # another thread already replaced it
            self._pool = None
            self.restarts += 1
        log.warning("a page decoding process died: decoding in the worker, then restarting it")
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
