"""A deadline for a request's headers, which uvicorn does not have.

uvicorn times out an idle keep-alive connection, but not one that sends its request headers a
byte at a time: hundreds of such connections stay open for as long as the client likes. The
HTTP protocol classes here are uvicorn's, with one timer added per connection: armed when the
connection opens and again after each response, cancelled once a request's headers are complete
(uvicorn then creates that request's ``cycle``). When it fires first, the client gets a 408 and
the connection is closed. The body has its own deadline (``serve.limits.request_timeout_s``).

uvicorn reads the deadline from its config object (:func:`set_header_timeout`); the hooks used
(``connection_made``, ``data_received``, ``on_response_complete``, ``cycle``) are uvicorn's
protocol internals, covered by a test that trickles headers over a real socket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

ATTRIBUTE = "lapp_header_timeout_s"


def _timeout_response() -> bytes:
    body = b'{"error": {"status": 408, "message": "the request headers did not arrive in time"}}'
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def set_header_timeout(config: Any, seconds: float) -> None:
    """Give uvicorn's ``config`` the deadline the protocols below read (pickled to workers)."""
    setattr(config, ATTRIBUTE, float(seconds))


class HeaderDeadline:
    """Mixin over a uvicorn HTTP protocol: close a connection whose headers are late."""

    _header_timer: asyncio.TimerHandle | None = None
    _cycle_at_arm: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self._header_timer is not None and self.cycle is not self._cycle_at_arm:  # type: ignore[attr-defined]
            self._disarm()  # this request's headers are complete

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():  # type: ignore[attr-defined]
            self._arm()  # a kept-alive connection: the next request's headers are due

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._disarm()
        seconds = getattr(self.config, ATTRIBUTE, None)  # type: ignore[attr-defined]
        if seconds:
            self._cycle_at_arm = getattr(self, "cycle", None)
            self._header_timer = self.loop.call_later(seconds, self._expire)  # type: ignore[attr-defined]

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        transport = self.transport  # type: ignore[attr-defined]
        if transport.is_closing() or getattr(self, "cycle", None) is not self._cycle_at_arm:
            return
        transport.write(_timeout_response())
        transport.close()


class H11Deadline(HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a header deadline."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional in uvicorn
    HttpToolsDeadline = None
else:

    class HttpToolsDeadline(HeaderDeadline, HttpToolsProtocol):  # type: ignore[no-redef]
        """uvicorn's httptools protocol (its default when installed) with a header deadline."""


def protocol_path() -> str:
    """The ``uvicorn.Config(http=...)`` import path: httptools when installed, as uvicorn's
    ``auto`` would choose, else h11."""
    name = "HttpToolsDeadline" if HttpToolsDeadline is not None else "H11Deadline"
    return f"{__name__}:{name}"
