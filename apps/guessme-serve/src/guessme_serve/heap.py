"""Keep Python's cyclic garbage collector off the players' latency.

A replica holds ~300,000 objects from its imports alone (Ray, FastAPI, pydantic). CPython's full
(generation 2) collection walks all of them, and it runs whenever a quarter as many new objects
have survived since the last one: a thousand sockets opening is enough. Measured on the shared
machine: one full collection took ~300 ms (7 ms once frozen), all of it with the event loop stopped,
so every player on the replica waits; the size of the players benchmark's p99. `gc.freeze()`
(Python's own API for long-lived objects) moves the objects alive after start-up into a permanent
generation that collections skip; they are still freed by reference counting, and everything
created later is collected as before.
"""

import gc


def freeze_long_lived() -> int:
    """Collect what start-up left over, then exempt every object alive now from future collections;
    returns how many objects are frozen. Call once the replica is loaded, before players arrive:
    objects alive at this moment that later become cyclic garbage are never reclaimed."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
