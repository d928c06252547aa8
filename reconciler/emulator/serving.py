"""A uvicorn server on a socket bound here, run in a background thread for the length of a block.

Shared by the emulator's runner (`running_emulator`) and the web view's (`reconciler.ui.server`).
It lives in the emulator package because the emulator must import nothing from the rest of
`reconciler` (it could move to another repository), while any other package may import the
emulator: this module imports only the standard library and uvicorn, so it would move with it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import uvicorn


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` (0: a free port the system picks), IPv6 when `host` is.

    Binding here, before uvicorn starts, leaves no race between picking a port and using it.

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


@contextlib.contextmanager
def serving_in_thread(server: uvicorn.Server, sock: socket.socket, what: str) -> Iterator[None]:
    """Run `server` on `sock` in a daemon thread; the block starts once it accepts connections.

    On exit the server is told to stop, its thread joined and the socket closed.

    Raises:
        RuntimeError: the server failed to start (the error it raised, named after `what`).
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"{what}:{sock.getsockname()[1]}", daemon=True)
    thread.start()
    while not server.started:
        if errors or not thread.is_alive():
            sock.close()
            raise RuntimeError(
                f"{what} failed to start: {errors[0] if errors else 'thread exited'}"
            )
        threading.Event().wait(0.005)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
