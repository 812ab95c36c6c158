"""An ASGI app served by uvicorn on 127.0.0.1 from a background thread: the demo PMS and the
fake systems tests talk to (CodaBox-style API, and the next ones) share this one way of
starting, waiting for the port, and stopping."""

from __future__ import annotations

import threading
import time


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
