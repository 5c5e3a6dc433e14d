"""The request window decides like the plain rule it implements, at any sequence of departures and answers.

The window keeps its entries in a heap so that a departure costs O(log n), not a look at every request
of the last second; a straightforward model of the rule (every entry looked at on every question) is
the oracle, over random sequences of departures, first bytes written and answers.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_whatsapp.hooks._pacing import WINDOW_SAFETY, Departure, RequestWindow


class ReferenceWindow:
    """The rule, written plainly: in flight counts as arriving now; answered as arriving at its answer
    minus the quickest round trip seen, never before it left; each stays one span after it arrived.
    """

    def __init__(self, rate: float, clock: list[float]) -> None:
        self.burst = max(1, math.floor(rate))
        self.span = self.burst / rate * WINDOW_SAFETY
        self.clock = clock
        self.entries: list[Departure] = []
        self.quickest = math.inf

    def _room(self) -> float | None:
        now = self.clock[0]
        kept, expiries = [], []
        for entry in self.entries:
            arrival = None if entry.answered is None else max(entry.left, entry.answered - self.quickest)
            if arrival is None or arrival > now - self.span:
                kept.append(entry)
                if arrival is not None:
                    expiries.append(arrival + self.span)
        self.entries = kept
        if len(kept) < self.burst:
            return 0.0
        return max(0.0, min(expiries) - now) if expiries else None

    def try_depart(self) -> tuple[Departure | None, float | None]:
        wait = self._room()
        if wait != 0.0:
            return None, wait
        entry = Departure(self.clock[0])
        self.entries.append(entry)
        return entry, 0.0

    def written(self, entry: Departure) -> None:
        if not entry.written and entry.answered is None:
            entry.written = True
            entry.left = self.clock[0]

    def answered(self, entry: Departure) -> None:
        entry.answered = self.clock[0]
        self.quickest = min(self.quickest, entry.answered - entry.left)


# One step: ("tick", seconds), ("depart", _), ("write", which in flight), ("answer", which in flight).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.floats(min_value=0.0, max_value=0.6)),
        st.tuples(st.sampled_from(["depart", "write", "answer"]), st.integers(min_value=0, max_value=50)),
    ),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(rate=st.sampled_from([1.0, 2.5, 3.0, 7.0]), steps=STEPS)
def test_the_window_decides_as_the_plain_rule(rate: float, steps: list[tuple[str, float]]) -> None:
    clock = [100.0]
    window = RequestWindow(rate, clock=lambda: clock[0])
    reference = ReferenceWindow(rate, clock)
    in_flight: list[tuple[Departure, Departure]] = []
    for action, value in steps:
        if action == "tick":
            clock[0] += value
        elif action == "depart":
            got, wait = window.try_depart()
            expected, expected_wait = reference.try_depart()
            assert (got is None, wait) == (expected is None, expected_wait)
            if got is not None and expected is not None:
                in_flight.append((got, expected))
        elif in_flight:
            got, expected = in_flight[int(value) % len(in_flight)]
            if action == "write":
                window.written(got)
                reference.written(expected)
            else:
                window.answered(got)
                reference.answered(expected)
                in_flight.remove((got, expected))
        assert window.room() == ((reference._room() == 0.0), reference._room())


def test_an_answer_counted_twice_frees_one_place_only() -> None:
    clock = [0.0]
    window = RequestWindow(2, clock=lambda: clock[0])
    first, _ = window.try_depart()
    second, _ = window.try_depart()
    assert first is not None and second is not None
    window.answered(first)
    window.answered(first)  # a caller that reports the same answer again
    clock[0] = 0.01
    assert window.room()[0] is False  # both still in the window: one in flight, one just answered
