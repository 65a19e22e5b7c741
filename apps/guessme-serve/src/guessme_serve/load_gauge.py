"""How busy a replica is: the time-averaged number of predictions in flight (Little's law).

Open sockets cost nothing while their players think; predictions cost CPU. The autoscaler is
fed this figure (GuessmeServe.record_autoscaling_stats, autoscaling_policy.py) instead of the
socket count Ray Serve would use by default. The mean over the time since the last reading is
exact, where a sampled instantaneous count would mostly read 0 between bursts.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class LoadGauge:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.in_flight = 0
        self._area = 0.0  # integral of in_flight over time since the last reading
        self._since = self._last = clock()

    def _advance(self) -> None:
        now = self._clock()
        self._area += self.in_flight * (now - self._last)
        self._last = now

    @contextmanager
    def track(self) -> Iterator[None]:
        self._advance()
        self.in_flight += 1
        try:
            yield
        finally:
            self._advance()
            self.in_flight -= 1

    def read_mean(self) -> float:
        """Mean predictions in flight since the previous reading; starts a new window."""
        self._advance()
        span = self._last - self._since
        mean = self._area / span if span > 0 else float(self.in_flight)
        self._area, self._since = 0.0, self._last
        return mean
