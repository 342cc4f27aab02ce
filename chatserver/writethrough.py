"""Writing a broadcast frame to a TCP socket at once, when nothing is queued before it.

Twisted's `transport.write` never sends: it appends to the transport's buffer and registers the
socket for writability (`epoll_ctl`), the reactor's next `epoll_wait` reports it writable, then
`doWrite` sends and unregisters it (`epoll_ctl` again). For a fan-out of one frame to every
member of a room that is three system calls and a reactor dispatch per delivery where one
`send()` would do; in the many-rooms benchmark the registration and dispatch were a large share
of the chat server's samples (docs/performance.md, "Where the time goes").

`write_now(transport, data)` sends straight away when the transport is a plain TCP connection
(`twisted.internet.tcp.Connection`, no TLS) that is connected and has nothing buffered, and
hands whatever the kernel did not take (all of it on `EAGAIN`, or on any socket error, which
Twisted then finds and reports on its own schedule) to `transport.write`, so the bytes stay in
order behind each other and flow control (`pauseProducing`) works as before. Any other transport
(TLS, a test's `StringTransport`) gets a plain `transport.write`.

Relies on `tcp.Connection`'s buffer and state attributes (`dataBuffer`, `offset`,
`_tempDataLen`, `_writeDisconnected`, `_aborting`; Twisted's `twisted/internet/abstract.py`,
`FileDescriptor.write` and `doWrite`, and `tcp._AbortingMixin`), pinned by
tests/chatserver/test_writethrough.py on real sockets.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp


def write_now(transport: Any, data: bytes) -> int:
    """Send `data` now if nothing is queued before it, queue the rest; returns bytes sent now.

    `data` is the bytes of whole frames. Never raises for a socket error (it is left to the
    transport, which will find it on its next write attempt and close the connection).
    """
    if (
        type(transport) is not tcp.Server  # accepted connections; never a TLS wrapper
        or getattr(transport, "TLS", False)
        or not transport.connected
        or transport.disconnecting
        or transport._aborting  # abortConnection: Twisted will send nothing more
        or transport._writeDisconnected
        or transport._tempDataLen
        or len(transport.dataBuffer) != transport.offset
    ):
        transport.write(data)
        return 0
    try:
        sent = transport.socket.send(data)
    except OSError:  # EAGAIN (a full send buffer), or a broken connection
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])
    return sent
