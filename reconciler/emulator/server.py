"""Runners: the emulator under uvicorn, in the foreground (`serve`) or in a background thread.

`running_emulator` is what tests, the demo and `--endpoint emulator` use: it binds a free port on
127.0.0.1 itself (no race between picking and binding), runs the server in a thread
(`serving.serving_in_thread`, shared with the web view) and hands back an `EmulatorHandle`.
The uvicorn protocol is h11's, subclassed only to register each connection's transport so the
fault injector can drop a connection without answering (ASGI offers no way to do that).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from reconciler.emulator.app import EmulatorState, create_app
from reconciler.emulator.catalogue import Catalogue
from reconciler.emulator.faults import ConnectionRegistry
from reconciler.emulator.serving import bind, serving_in_thread
from reconciler.emulator.settings import EmulatorSettings, SettingsHolder, coerce_changes
from reconciler.emulator.store import Store

logger = logging.getLogger(__name__)


def _protocol_class(registry: ConnectionRegistry) -> type[H11Protocol]:
    class DroppableH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            registry.add(self.client, transport)
            # h11 writes headers and body separately; without TCP_NODELAY the body waits for
            # the client's delayed ACK (~40 ms per call on a kept-alive connection).
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def connection_lost(self, exc: Exception | None) -> None:
            registry.discard(self.client)
            super().connection_lost(exc)

    return DroppableH11Protocol


def build_server(
    data_dir: Path,
    settings: EmulatorSettings,
    host: str,
    port: int,
    log_level: str = "warning",
) -> tuple[uvicorn.Server, EmulatorState]:
    """A configured (not yet started) uvicorn server and the state its routes share."""
    data_dir.mkdir(parents=True, exist_ok=True)
    connections = ConnectionRegistry()
    state = EmulatorState(Store(data_dir), SettingsHolder(settings), connections)
    config = uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="off",
        http=_protocol_class(connections),
        access_log=False,
    )
    return uvicorn.Server(config), state


def serve(
    data_dir: Path,
    settings: EmulatorSettings,
    host: str = "127.0.0.1",
    port: int = 8765,
    log_level: str = "info",
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Run the emulator in the foreground until interrupted (`reconciler emulator serve`).

    The socket is bound and listening here, before uvicorn starts, so `on_listening` learns the
    real port (the one the system picked for `port=0`) and a client told it can connect at once.
    """
    server, _ = build_server(data_dir, settings, host, port, log_level)
    sock = bind(host, port)
    try:
        sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
        if on_listening is not None:
            on_listening(sock.getsockname()[1])
        server.run(sockets=[sock])
    finally:
        sock.close()


@dataclasses.dataclass
class EmulatorHandle:
    """A running in-process emulator."""

    base_url: str
    """`http://127.0.0.1:PORT`, to pass as the SDK's `http_options.base_url`."""
    data_dir: Path
    _state: EmulatorState

    @property
    def settings(self) -> EmulatorSettings:
        return self._state.settings.get()

    def configure(self, **settings: Any) -> EmulatorSettings:
        """Change settings (faults, quirks, durations) at run time; returns the new settings.

        Raises:
            ValueError: an unknown setting or a bad value.
        """
        return self._state.settings.update(**coerce_changes(json.loads(json.dumps(settings))))

    @property
    def catalogue(self) -> Catalogue:
        """The models `models.get` / `models.list` answer and the batch routes accept."""
        return self._state.catalogue

    def calls(self) -> dict[str, int]:
        """Calls per route (e.g. `batches.get`) since start or the last reset."""
        return self._state.faults.calls()

    def reset_calls(self) -> None:
        self._state.faults.reset_calls()


@contextlib.contextmanager
def running_emulator(data_dir: Path, **settings: Any) -> Iterator[EmulatorHandle]:
    """Start the emulator on a free port of 127.0.0.1 in a background thread.

    Args:
        data_dir: where the SQLite database and blobs live; reuse it to see earlier jobs.
        **settings: any `EmulatorSettings` field, e.g. `job_seconds=0.2, rate_503=0.5`.

    Yields:
        An `EmulatorHandle`; the server stops when the block exits.
    """
    server, state = build_server(Path(data_dir), EmulatorSettings(**settings), "127.0.0.1", 0)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    with serving_in_thread(server, sock, "emulator"):
        yield EmulatorHandle(f"http://127.0.0.1:{port}", Path(data_dir), state)
