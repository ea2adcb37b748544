"""What start-up made is frozen out of the cyclic collector's walks (gateway.heap: the numbers are there)."""

from __future__ import annotations

import gc

from tests.conftest import config_dict


def test_a_started_gateway_has_frozen_its_heap_and_set_the_thresholds(fakes, start_gateway):
    gc.unfreeze()  # whatever an earlier gateway of this test process froze
    gc.set_threshold(1, 1, 1)
    start_gateway(config_dict(fakes, order=("openai",)))
    assert gc.get_freeze_count() > 10_000  # config, modules, pools: everything alive once it serves
    assert gc.get_threshold() == (700, 10, 10)
