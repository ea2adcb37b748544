"""The cyclic garbage collector, set once the gateway has started: what it tracks, and how often it runs.

Measured (issue 15): the request path leaves nothing in reference cycles, served or failed
(`gc.DEBUG_SAVEALL` over 200 requests of each: plain, streamed, failed over, a stream cut, a
provider unreachable or too slow, a client that leaves; tests/test_heap.py keeps it so). Failed
attempts once left 27 to 97 objects each; gateway.transport.http says where they came from. So the
collector only costs time: every run walks the objects it tracks, and after start-up those are
~166,000 objects of config, modules, pools and the price file that will live as long as the
process. At 64 connections the requests in flight push allocations past the default threshold
(700) many times a second, and every few hundred runs the full collection walks all of them: most
of the p99.

So, once started, `gc.freeze()` moves everything alive into a permanent generation the collector
never walks (refcounting still frees any of it that dies). Cycles made later (libraries' exceptions
and their tracebacks on failures) are still collected, by collections that walk only what was made
since. Measured with wrk against an nginx mock, gateway pinned to one core, 4 s runs, two rounds
(p50 / p99 ms):

    as before                    c=16  2.86 / 46.6   2.90 / 44.5    c=64  13.1 / 65.9   13.4 / 63.2
    frozen, thresholds 700       c=16  2.88 /  4.6   3.08 /  5.6    c=64  12.1 / 15.4   15.2 / 18.6
    frozen, thresholds 10,000    c=16  2.56 /  4.9   3.60 /  6.8    c=64  11.9 / 17.9   13.9 / 42.9

A larger first threshold runs the collector less often, but each run then walks more young objects:
the tail grows again. The defaults stay, set here so that the choice is one place. Frozen, the
collector no longer costs CPU that shows: with the benchmark's config, 3 s runs at c=16, it
measured 212, 215, 214 and 212 us a request on, and 207, 212, 213 (and one outlier of 264) us
with it disabled outright. At c=64 it still takes about 7 % (timed with `gc.callbacks` over 24 s:
young collections 4.9 %, middle 1.6 %, full 0.6 %, the longest full one 44 ms): the requests in
flight are what it walks then. The tail's rare outliers (a slowest request near 235 ms in 2 runs of
15) are longer than any collection timed so far: not explained yet.
"""

from __future__ import annotations

import gc

# (allocations before a young collection, young collections before a middle one, middle before a full)
THRESHOLDS = (700, 10, 10)


def settle(collect: bool = True) -> None:
    """Freeze what start-up made and set the thresholds; again after a late import (litellm's, whose
    hundreds of MB would otherwise be walked by every full collection). `collect=False` skips the
    collection first (it holds the GIL for as long as it walks: not while serving)."""
    if collect:
        gc.collect()
    gc.freeze()  # a splice of lists: cheap at any time
    gc.set_threshold(*THRESHOLDS)
