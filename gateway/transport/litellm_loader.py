"""litellm's import, in a background thread, once per process, and only when a provider needs it.

`import litellm` takes seconds (3-4 s here) and hundreds of MB, so a gateway never imports it on
its own: configuring a provider of the `litellm` flavor asks for it (`want`), and the import starts
once the transports start, so that it does not slow the gateway's own start (it holds the GIL in
turns with the main thread). Until it ends such a provider is `starting`; if it fails, the provider
says why and the rest of the gateway serves on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import warnings
from typing import Any

from gateway import heap

log = logging.getLogger("gateway.litellm")


class _Loader:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._wanted = False
        self._may_start = False  # the transports have started: the gateway is up, or a doctor runs
        self._thread: threading.Thread | None = None
        self.module: Any = None
        self.error: str | None = None

    def want(self) -> None:
        """A configured provider needs litellm: import it once the transports start (at once if they have)."""
        self._wanted = True
        if self._may_start:
            self.start()

    def transports_started(self) -> None:
        self._may_start = True
        if self._wanted:
            self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._import, name="import-litellm", daemon=True)
        self._thread.start()

    def _import(self) -> None:
        started = time.perf_counter()
        try:
            # Without it, the import first GETs the price file from GitHub (5 s timeout).
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            # Pydantic's note on litellm's own types, a dozen lines on stderr at each start: not ours to act on.
            warnings.filterwarnings("ignore", message=r".*`ReadOnly` qualifier", category=UserWarning)
            import litellm

            litellm.suppress_debug_info = True  # else every exception prints a banner to stdout
            # The gateway is the retry layer. Calls pass max_retries=0, but `aembedding` for openai/…
            # reads `max_retries or DEFAULT_MAX_RETRIES` (0 is falsy): 3 requests without this.
            litellm.DEFAULT_MAX_RETRIES = 0
            self.module = litellm
            log.warning("litellm loaded in %.1f s: its providers can serve", time.perf_counter() - started)
            heap.settle(collect=False)  # its modules live as long as the process, too
        except BaseException as exc:  # whatever it is, the provider says it; the gateway serves on
            self.error = f"litellm could not be imported ({type(exc).__name__}: {exc})"
            log.error("%s: its providers cannot serve", self.error)
        finally:
            self._done.set()

    def loading(self) -> bool:
        return not self._done.is_set()

    async def loaded(self, timeout_s: float) -> bool:
        """Wait (off the event loop) for the import to end, at most `timeout_s`; whether litellm is usable."""
        self.want()
        self.start()
        await asyncio.to_thread(self._done.wait, timeout_s)
        return self.module is not None


LOADER = _Loader()
