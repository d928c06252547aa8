"""The web view under uvicorn: in the foreground (`reconciler ui`) or in a background thread
(tests, the benchmark), always on an address the caller chose (127.0.0.1 unless told).

Binding and the background thread are the emulator's runner's (`reconciler.emulator.serving`):
the emulator may import nothing from the rest of reconciler, so the one copy lives there."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn
from starlette.applications import Starlette

from reconciler.emulator.serving import bind, serving_in_thread

__all__ = ["bind", "running_ui", "serve"]


def _server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    return uvicorn.Server(config)


def serve(app: Starlette, sock: socket.socket, on_ready: Callable[[], None] | None = None) -> None:
    """Serve on the bound `sock` until interrupted (Ctrl-C); `on_ready` runs (in another
    thread) once it listens."""
    host, port = sock.getsockname()[:2]
    server = _server(app, host, port)
    if on_ready is not None:

        def wait_then_call() -> None:
            while not server.should_exit:
                if server.started:
                    on_ready()
                    return
                threading.Event().wait(0.05)

        threading.Thread(target=wait_then_call, name="ui:ready", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


@contextlib.contextmanager
def running_ui(app: Starlette, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` on a free port of `host` in a background thread; yields its base URL."""
    sock = bind(host, 0)
    port = sock.getsockname()[1]
    with serving_in_thread(_server(app, host, port), sock, "the web view"):
        yield f"http://{host}:{port}"
