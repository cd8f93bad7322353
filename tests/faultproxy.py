"""A small TCP proxy on 127.0.0.1 that injects network faults in front of a real server.

Modes, applied to the first ``faults`` connections (later ones pass through untouched, which
is how a test shows that a client retries through transient faults):

- ``pass``: forward both ways;
- ``delay``: forward, sleeping ``delay`` seconds before each chunk;
- ``stall``: accept, read and discard, never answer (a hung endpoint);
- ``reset``: forward, then reset the connection (RST) once ``after`` bytes went upstream, or
  downstream with ``direction="down"``;
- ``http503``: answer the request with ``503 Slow Down`` and close.

Everything is bounded: socket timeouts, a lifetime per connection, and ``stop()`` closes
all sockets and joins the threads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Literal

Mode = Literal["pass", "delay", "stall", "reset", "http503"]
_TICK = 0.2  # how often blocked loops look at the stop flag
_LIFETIME = 120.0  # no connection outlives this

_SLOW_DOWN = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FaultProxy:
    def __init__(
        self,
        target: tuple[str, int],
        mode: Mode = "pass",
        *,
        faults: int = 1_000_000,
        after: int = 0,
        direction: Literal["up", "down"] = "up",
        delay: float = 0.0,
    ) -> None:
        if target[0] not in ("127.0.0.1", "localhost"):
            raise ValueError("the fault proxy only targets loopback")
        self.target = target
        self.mode: Mode = mode
        self.faults = faults
        self.after = after
        self.direction = direction
        self.delay = delay
        self.connections = 0
        self.faulted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(_TICK)
        self.port: int = self._listener.getsockname()[1]
        self._spawn(self._accept_loop)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, fn: object, *args: object) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(t)
        t.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            socks = [*self._socks, self._listener]
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(timeout=5)

    def _track(self, s: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(s)
        s.settimeout(_TICK)
        return s

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
                faulty = self.faulted < self.faults and self.mode != "pass"
                if faulty:
                    self.faulted += 1
            self._spawn(self._handle, self._track(client), faulty)

    def _handle(self, client: socket.socket, faulty: bool) -> None:
        mode = self.mode if faulty else "pass"
        deadline = time.monotonic() + _LIFETIME
        try:
            if mode == "stall":
                self._drain(client, deadline)
            elif mode == "http503":
                self._answer_503(client, deadline)
            else:
                upstream = self._track(socket.create_connection(self.target, timeout=5))
                self._spawn(self._pump, upstream, client, mode, "down", deadline)
                self._pump(client, upstream, mode, "up", deadline)
        except OSError:
            pass

    def _drain(self, sock: socket.socket, deadline: float) -> None:
        """Read and discard until the peer goes away or the bound passes."""
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if not sock.recv(65536):
                    return
            except TimeoutError:
                continue
        _close(sock)

    def _answer_503(self, sock: socket.socket, deadline: float) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf and len(buf) < 65536 and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if self._stop.is_set():
                    return
                continue
            if not chunk:
                return
            buf += chunk
        head = (
            b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_SLOW_DOWN)
        )
        _send(sock, head + _SLOW_DOWN, deadline)
        # Read what the client still sends (a request body) before closing, so the close is
        # a FIN and not a RST that could hide the answer; bounded by time.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        self._drain(sock, min(deadline, time.monotonic() + 2.0))

    def _pump(
        self, src: socket.socket, dst: socket.socket, mode: str, direction: str, deadline: float
    ) -> None:
        sent = 0
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    chunk = src.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                if mode == "delay" and self.delay:
                    time.sleep(self.delay)
                if mode == "reset" and direction == self.direction:
                    room = self.after - sent
                    if len(chunk) >= room:
                        if room > 0:
                            _send(dst, chunk[:room], deadline)
                        _reset(src)
                        _reset(dst)
                        return
                _send(dst, chunk, deadline)
                sent += len(chunk)
        except OSError:
            _close(src)
            _close(dst)


def _send(sock: socket.socket, data: bytes, deadline: float) -> None:
    """sendall that tolerates the short socket timeout, bounded by the connection's life."""
    view = memoryview(data)
    while view:
        if time.monotonic() > deadline:
            raise TimeoutError("fault proxy connection outlived its bound")
        try:
            view = view[sock.send(view) :]
        except TimeoutError:
            continue


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees ECONNRESET, as with a dropped middlebox."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
