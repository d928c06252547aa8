"""The web view under uvicorn: in the foreground (`reconciler ui`) or in a background thread
(tests, the benchmark), always on an address the caller chose (127.0.0.1 unless told)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn
from starlette.applications import Starlette


def _server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    return uvicorn.Server(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on `host:port` (0: a free port).

    Raises:
        OSError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


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
    server = _server(app, host, port)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"ui:{port}", daemon=True)
    thread.start()
    while not server.started:
        if errors or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"the web view failed to start: {errors[0] if errors else 'exit'}")
        threading.Event().wait(0.005)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
