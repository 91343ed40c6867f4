"""Sinks that are not the detector: one that keeps what it is given (tests, development) and
one that drops it (the benchmark's measure of the consumer alone)."""

import threading

from stepout.domain.instants import Instant
from stepout.domain.presence import Observation


class RecordingSink:
    """Keeps every observation and tick, in order; `wait_for` lets a test wait for them."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.ticks: list[Instant] = []
        self._changed = threading.Condition()

    def observe(self, observation: Observation) -> None:
        with self._changed:
            self.observations.append(observation)
            self._changed.notify_all()

    def tick(self, now: Instant) -> None:
        with self._changed:
            self.ticks.append(now)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0, kind: type | None = None) -> bool:
        """Whether `count` observations (of `kind`, if given) arrived within `timeout` s."""

        def enough() -> bool:
            if kind is None:
                return len(self.observations) >= count
            return sum(isinstance(o, kind) for o in self.observations) >= count

        with self._changed:
            return self._changed.wait_for(enough, timeout)


class NullSink:
    """Counts and drops."""

    def __init__(self) -> None:
        self.observed = 0

    def observe(self, observation: Observation) -> None:
        self.observed += 1

    def tick(self, now: Instant) -> None:
        pass
