"""An ASGI app served by uvicorn on 127.0.0.1 from a background thread: the demo PMS and the
fake systems tests talk to (CodaBox-style API, and the next ones) share this one way of
starting, waiting for the port, and stopping. The fakes also share their injected faults
(``Fault``, ``take_fault``) and the ``guarded`` wrapper around their endpoints."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


class LocalServer:
    """Use as a context manager; ``url`` is ``http://127.0.0.1:<port><root>``."""

    name = "local server"
    root = ""

    def __init__(self, app, port: int = 0) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=self.name, daemon=True)
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.root}"

    def start(self):
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} did not start on 127.0.0.1")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class Fault:
    """Answer the next request whose path contains ``path`` with ``status`` (``times`` times)."""

    status: int
    retry_after: str | None = None
    path: str = ""
    times: int = 1


def take_fault(faults: list, lock, path: str):
    """The first fault in ``faults`` matching ``path``, one use of it spent (gone once used up)."""
    with lock:
        for fault in faults:
            if fault.path in path:
                fault.times -= 1
                if fault.times <= 0:
                    faults.remove(fault)
                return fault
    return None


def guarded(current, fault_response, authenticate=None):
    """A decorator turning ``handler(request, store)`` into an endpoint over ``current`` (one store,
    or a callable giving the store at each request). Each request is recorded in ``store.requests``
    as (method, path?query); an injected fault from ``store.faults`` (taken under ``store._lock``) is
    answered with ``fault_response(fault, headers)``, ``headers`` carrying its Retry-After; then
    ``authenticate(store, request)``, if given, may answer instead of the handler."""
    current_store = current if callable(current) else (lambda: current)

    def wrap(handler):
        async def endpoint(request):
            store = current_store()
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            store.requests.append((request.method, path))
            fault = take_fault(store.faults, store._lock, path)
            if fault is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                return fault_response(fault, headers)
            refused = authenticate(store, request) if authenticate is not None else None
            if refused is not None:
                return refused
            return await handler(request, store)
        return endpoint
    return wrap
