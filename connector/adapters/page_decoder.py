"""Large ``events.list`` pages decoded, and their events' Avro bodies written, in other processes.

A full sync's Python work per event (decode the page's JSON, write the 47-field ``CalendarEvent``
body, build the envelope, produce) all ran under one GIL, which capped the connector near one
core however many calendars it fetched at once. Decoding and the body are the two biggest parts
and need nothing from the connector's state, so a page of at least ``min_bytes`` goes, as the raw
bytes Google sent, to one of ``decode_processes`` processes (``page_worker``, over a pipe). There,
``prepare_page`` decodes it and writes each event's Avro body; the page comes back as a
``PreparedPage`` (JSON of the few fields the sync core reads, ``FACT_KEYS``, and the bodies end
to end), which the worker thread turns into ``PreparedEvent`` items ready for ``apply_page``;
``ChangeWriter`` copies each body instead of writing it.

A ``PreparedEvent`` is a read-only ``Mapping`` of the whole Google event: any other key is read
from its Avro body (decoded once, on first use), so code that wants the full event (a Schema
Registry writer schema other than ours, say) still sees exactly what Google sent.

Everything a worker process might read differently from the in-thread path is left to it: a page
that orjson would not read exactly as ``json`` does (``fast_loads``) comes back as None and is
decoded in the thread; an item without a string ``id`` and ``etag``, or whose body cannot be
written, stays a plain dict. If a process dies, the page is decoded in the thread and another
process is started. A process exits at the end of its input, so it never outlives the connector.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import orjson

from connector.adapters.avro_fastpath import Reader, Writer, compile_reader
from connector.adapters.avro_shapes import SparseWriter

log = logging.getLogger(__name__)

# What the sync core reads of an item (``connector.core.mapping`` and ``sync.version_of``).
FACT_KEYS = frozenset({"id", "etag", "status", "recurringEventId", "updated"})
EVENTS_KIND = "calendar#events"
MIN_BYTES = 64 * 1024  # below this, the round trip to another process is not worth it
PREPARED, NOT_PREPARED = b"P", b"N"  # a decoding process's replies

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


# -- in the decoding process (connector/adapters/page_worker.py) -------------------------------
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
class _Process:
    """One decoding process (``python -m connector.adapters.page_worker``), one page at a time:
    the page's bytes on its stdin, ``page_worker.write_reply`` on its stdout. It exits when its
    stdin closes, so a connector that dies (even by SIGKILL) takes it along."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector.adapters.page_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def decode(self, content: bytes) -> PreparedPage | None:
        """Raises OSError, EOFError or ValueError if the process died."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(len(content).to_bytes(8, "little"))
        stdin.write(content)
        stdin.flush()
        return read_reply(stdout)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the process exits at the end of its input
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def read_reply(stream: IO[bytes]) -> PreparedPage | None:
    """A decoding process's answer: a ``PreparedPage``, or None (decode it in the thread)."""
    kind = _read_exactly(stream, 1)
    if kind == NOT_PREPARED:
        return None
    if kind != PREPARED:
        raise OSError(f"unexpected reply {kind!r} from a decoding process")
    head, prepared, bodies, ends = (_read_frame(stream) for _ in range(4))
    return PreparedPage(head, prepared, bodies, array("Q", ends).tolist())


def write_reply(stream: IO[bytes], page: PreparedPage | None) -> None:
    if page is None:
        stream.write(NOT_PREPARED)
    else:
        stream.write(PREPARED)
        for frame in (page.head, page.prepared, page.bodies, array("Q", page.ends).tobytes()):
            stream.write(len(frame).to_bytes(8, "little"))
            stream.write(frame)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes:
    return _read_exactly(stream, int.from_bytes(_read_exactly(stream, 8), "little"))


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the decoding process closed its output")
    return data


class PageDecoder:
    """``processes`` decoding processes; a page waits for a free one."""

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
        self._idle: queue.SimpleQueue[_Process | None] = queue.SimpleQueue()
        self._all: list[_Process] = []
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self.restarts = 0  # processes replaced after one died
        self.decoded = 0  # pages decoded by a process
        # Called per page: "process", "thread" (decoded in the worker thread instead) or
        # "restart" (the same, because a process died).
        self._on_page = on_page or (lambda by: None)

    def start(self) -> None:
        """Start the processes now (each takes ~0.1 s of CPU to import), so that the first
        large page does not wait for them."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
            for _ in range(self.processes):
                self._idle.put(self._spawn())

    def _spawn(self) -> _Process:
        process = _Process()
        self._all.append(process)
        return process

    def pids(self) -> list[int]:
        with self._lock:
            return [p.proc.pid for p in self._all]

    def decode(self, content: bytes) -> Any:
        """``prepare_page(content)`` in a decoding process, unpacked; None: decode it here."""
        if self._closed:
            return None
        self.start()
        process = self._idle.get()
        if process is None:  # closed
            self._idle.put(None)
            return None
        try:
            page = process.decode(content)
        except (OSError, EOFError, ValueError):  # died (ValueError: its pipe was closed)
            process = self._replace(process)
            self._on_page("restart")
            return None
        finally:
            self._idle.put(process)
        if page is None:
            self._on_page("thread")  # json might read it differently from orjson
            return None
        with self._lock:
            self.decoded += 1
        self._on_page("process")
        return page.page()

    def _replace(self, dead: _Process) -> _Process | None:
        log.warning("a page decoding process died: decoding in the worker, then restarting it")
        dead.stop()
        with self._lock:
            if dead in self._all:
                self._all.remove(dead)
            self.restarts += 1
            return None if self._closed else self._spawn()

    def close(self) -> None:
        """Stop the processes (after the workers stopped: a page in flight fails over)."""
        with self._lock:
            self._closed = True
            processes, self._all = self._all, []
        self._idle.put(None)
        for process in processes:
            process.stop()
