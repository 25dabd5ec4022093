"""Garbage-collector settings for the commands that talk to a fleet.

A fleet run keeps the compiled model, the inventory and the parsed replies alive for minutes
while dozens of worker threads allocate. With the default thresholds the collector ran a full
collection every few seconds over all of it (16 of them, about 2.5 s, in a no-change deploy
to 200 emulated devices), holding the GIL each time. What exists before the fleet work starts
lives until the process ends: it is moved out of the collector's reach (gc.freeze), and the
young generation is collected less often.
"""

import gc

YOUNG_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700)
OLDER_THRESHOLDS = (20, 20)


def settle_heap() -> None:
    """Freeze what is alive now and collect less often from here on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
