"""A decoding process: ``python -m connector.adapters.page_worker`` (started by ``PageDecoder``).

Reads pages from stdin (8 bytes of length, little-endian, then the response's bytes) and answers
each on stdout with ``page_decoder.write_reply``: a ``PreparedPage`` for an events page, or
"not prepared" for anything the worker thread should decode itself (a page orjson might read
differently from ``json``, any other response). Exits at the end of its input: when the
connector closes it, or dies. Imports only what decoding needs.
"""

from __future__ import annotations

import signal
import sys

from connector.adapters.page_decoder import PreparedPage, prepare_page, write_reply
from connector.gc_tuning import tune_garbage_collector


def main() -> int:
    # Ctrl-C reaches the whole process group: stopping is the connector's to decide.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_garbage_collector(freeze=False)  # a page is ~75,000 containers alive at once
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = stdin.read(8)
        if len(header) < 8:
            return 0  # the connector closed our input, or is gone
        size = int.from_bytes(header, "little")
        content = stdin.read(size)
        if len(content) < size:
            return 0
        page = prepare_page(content)
        write_reply(stdout, page if type(page) is PreparedPage else None)


if __name__ == "__main__":
    sys.exit(main())
