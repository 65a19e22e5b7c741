import pytest

from guessme_serve.rate_limit import TokenBucket

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused_then_refilled_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert [bucket.allow() for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now += 0.15  # one token (and a half) at 10/s
    assert bucket.allow() is True
    assert bucket.allow() is False
    clock.now += 60  # never more than the burst saved up
    assert sum(bucket.allow() for _ in range(20)) == 5


def test_sustained_rate_is_respected() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=50, burst=1, clock=clock)
    allowed = 0
    for _ in range(1000):  # 1000 messages over 10 s at 100/s
        clock.now += 0.01
        allowed += bucket.allow()
    assert 495 <= allowed <= 505


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (10, 0.5)])
def test_invalid_settings_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate, burst)


def test_client_limiter_keeps_one_bucket_per_client_and_a_bounded_number_of_clients() -> None:
    from guessme_serve.rate_limit import ClientLimiter

    clock = FakeClock()
    limiter = ClientLimiter(rate=1, burst=2, max_clients=3, clock=clock)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")  # another client has its own bucket
    for name in ("c", "d", "e"):  # a flood of new keys evicts the least recently seen
        limiter.allow(name)
    assert len(limiter._buckets) == 3
    assert "a" not in limiter._buckets
