"""The emulator server survives clients that vanish mid-request, and says nothing alarming."""

from __future__ import annotations

import logging
import socket

import pytest

from connector.emulator.server import EmulatorServer

pytestmark = pytest.mark.integration


def test_a_client_that_disconnects_is_not_an_error(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with EmulatorServer(port=0) as server, caplog.at_level(logging.ERROR):
        for _ in range(20):
            with socket.create_connection((server.host, server.port)) as sock:
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                sock.sendall(b"GET /emulator/requests HTTP/1.1\r\nHost: x\r\n\r\n")
        with socket.create_connection((server.host, server.port)) as sock:
            sock.sendall(b"GET /emulator/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = sock.recv(64)
        assert reply.startswith(b"HTTP/1.1 200")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in capfd.readouterr().err
