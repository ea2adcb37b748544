"""`gateway serve` with a window on what the cyclic collector frees: `python -m tests.gc_probe serve ...`.

SIGUSR1 collects, then keeps from then on whatever the collector would free (`gc.DEBUG_SAVEALL`)
and writes `armed` to $GC_PROBE_OUT; SIGUSR2 collects again and writes, as JSON, how many objects
it found in reference cycles and what types the most common are. A request path that makes no
cycles leaves nothing.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

OUT = Path(os.environ["GC_PROBE_OUT"])


def _arm(*_: Any) -> None:
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    OUT.write_text("armed")


def _report(*_: Any) -> None:
    gc.collect()
    gc.set_debug(0)
    found = collections.Counter(type(o).__module__ + "." + type(o).__qualname__ for o in gc.garbage)
    count = len(gc.garbage)
    gc.garbage.clear()
    OUT.write_text(json.dumps({"objects": count, "types": dict(found.most_common(12))}))


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _arm)
    signal.signal(signal.SIGUSR2, _report)
    from gateway.cli import main

    sys.exit(main(sys.argv[1:]))
