"""The micro-batcher: a lone request runs at once, concurrent ones share a forward pass, failures
reach their waiters, models never mix; and the load gauge and autoscaling policy built on it."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from guessme_serve.autoscaling_policy import METRIC, InflightPredictionPolicy
from guessme_serve.load_gauge import LoadGauge
from guessme_serve.micro_batch import MicroBatcher

pytestmark = pytest.mark.unit


def test_a_lone_request_is_a_batch_of_one() -> None:
    calls: list[tuple[str, list[int]]] = []

    def double(key: str, xs: list[int]) -> list[int]:
        calls.append((key, xs))
        return [x * 2 for x in xs]

    batcher: MicroBatcher[str, int, int] = MicroBatcher(double)

    async def lone() -> list[int]:
        return [await batcher.submit("m", i) for i in range(3)]  # one after another

    assert asyncio.run(lone()) == [0, 2, 4]
    assert calls == [("m", [0]), ("m", [1]), ("m", [2])]


def test_requests_arriving_during_a_forward_pass_go_together_in_the_next() -> None:
    release = threading.Event()
    sizes: list[int] = []

    def run(key: str, xs: list[int]) -> list[int]:
        sizes.append(len(xs))
        if len(sizes) == 1:
            release.wait(5)  # the first pass is slow: the others queue behind it
        return [x + 100 for x in xs]

    batcher: MicroBatcher[str, int, int] = MicroBatcher(run, max_batch=4)

    async def crowd() -> list[int]:
        first = asyncio.ensure_future(batcher.submit("m", 0))
        await asyncio.sleep(0.05)  # the first pass is running
        rest = [asyncio.ensure_future(batcher.submit("m", i)) for i in range(1, 7)]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *rest)

    assert asyncio.run(crowd()) == [100 + i for i in range(7)]
    assert sizes == [1, 4, 2]  # max_batch bounds a batch
    assert (batcher.batches, batcher.items) == (3, 7)


def test_models_never_share_a_batch_and_a_failure_reaches_only_its_batch() -> None:
    seen: list[tuple[str, list[int]]] = []

    def run(key: str, xs: list[int]) -> list[int]:
        seen.append((key, xs))
        if key == "broken":
            raise RuntimeError("model failed")
        return xs

    batcher: MicroBatcher[str, int, int] = MicroBatcher(run)

    async def mixed() -> list[object]:
        jobs = [batcher.submit(k, i) for i, k in enumerate(["a", "broken", "a", "b"])]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(mixed())
    assert [results[0], results[2], results[3]] == [0, 2, 3]
    assert isinstance(results[1], RuntimeError)
    assert sorted(seen) == [("a", [0, 2]), ("b", [3]), ("broken", [1])]


def test_load_gauge_is_the_time_averaged_number_in_flight() -> None:
    now = [0.0]
    gauge = LoadGauge(clock=lambda: now[0])
    with gauge.track():
        now[0] = 0.5
        with gauge.track():
            now[0] = 2.0
        now[0] = 3.0
    now[0] = 4.0
    assert gauge.read_mean() == pytest.approx((1 * 0.5 + 2 * 1.5 + 1 * 1.0 + 0 * 1.0) / 4)
    now[0] = 6.0
    assert gauge.read_mean() == 0.0  # a new window


def test_policy_wants_replicas_for_the_predictions_in_flight_not_the_sockets() -> None:
    policy = InflightPredictionPolicy(target_per_replica=4)
    busy = SimpleNamespace(aggregated_metrics={METRIC: {"r1": 7.0, "r2": 5.0}}, target_num_replicas=2)
    assert policy(busy)[0] == pytest.approx(3.0)
    idle = SimpleNamespace(aggregated_metrics={METRIC: {"r1": 0.0, "r2": 0.0}}, target_num_replicas=2)
    assert policy(idle)[0] == 0.0  # Ray's wrapper clamps to min_replicas
    fresh = SimpleNamespace(aggregated_metrics={}, target_num_replicas=2)
    assert policy(fresh)[0] == 2
    with pytest.raises(ValueError, match="target_per_replica"):
        InflightPredictionPolicy(target_per_replica=0)
