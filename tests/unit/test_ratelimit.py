"""The token buckets under the ccxt adapter: bursts, exact sleeps, writes first."""

from __future__ import annotations

import asyncio
import time

import pytest

from hedgekeeper.venues.ratelimit import READ, WRITE, BucketSpec, TokenBucket, bucket_specs


async def test_a_burst_up_to_the_capacity_goes_at_once() -> None:
    bucket = TokenBucket(BucketSpec(rate=10.0, capacity=5.0))
    began = time.monotonic()
    await asyncio.gather(*(bucket.acquire(1.0) for _ in range(5)))
    assert time.monotonic() - began < 0.05
    assert bucket.waited < 0.05


async def test_a_waiter_sleeps_until_its_tokens_are_back() -> None:
    bucket = TokenBucket(BucketSpec(rate=50.0, capacity=1.0))
    await bucket.acquire(1.0)
    began = time.monotonic()
    await bucket.acquire(1.0)  # one token back after 20 ms
    waited = time.monotonic() - began
    assert 0.015 <= waited < 0.2


async def test_waiting_costs_no_polling_wakeups() -> None:
    # ccxt's limiter wakes every millisecond while a request waits; ours sleeps once.
    bucket = TokenBucket(BucketSpec(rate=5.0, capacity=1.0))
    await bucket.acquire(1.0)
    wakeups = 0
    loop = asyncio.get_running_loop()
    real_sleep = asyncio.sleep

    async def ticker() -> None:
        nonlocal wakeups
        while True:
            await real_sleep(0.05)
            wakeups += 1

    counter = loop.create_task(ticker())
    began = time.process_time()
    await bucket.acquire(1.0)  # 200 ms of waiting
    cpu = time.process_time() - began
    counter.cancel()
    assert wakeups >= 3  # the loop was free meanwhile
    assert cpu < 0.05, f"{cpu:.3f} CPU-s spent waiting 0.2 s"


async def test_writes_are_served_before_waiting_reads() -> None:
    bucket = TokenBucket(BucketSpec(rate=100.0, capacity=1.0))
    await bucket.acquire(1.0)  # empty: everything below waits
    order: list[str] = []

    async def request(name: str, priority: int) -> None:
        await bucket.acquire(1.0, priority)
        order.append(name)

    reads = [asyncio.create_task(request(f"read{n}", READ)) for n in range(3)]
    await asyncio.sleep(0)
    write = asyncio.create_task(request("write", WRITE))
    await asyncio.gather(*reads, write)
    assert order[0] == "write"
    assert order[1:] == ["read0", "read1", "read2"]  # reads in arrival order


async def test_a_heavy_request_needs_a_full_bucket_and_leaves_it_in_debt() -> None:
    bucket = TokenBucket(BucketSpec(rate=100.0, capacity=2.0))
    await bucket.acquire(10.0)  # full bucket: goes at once, 8 tokens of debt
    assert bucket.tokens == pytest.approx(-8.0, abs=0.5)
    began = time.monotonic()
    await bucket.acquire(1.0)  # 90 ms until one token is back
    assert time.monotonic() - began >= 0.07


async def test_a_cancelled_waiter_gives_its_place_up() -> None:
    bucket = TokenBucket(BucketSpec(rate=50.0, capacity=1.0))
    await bucket.acquire(1.0)
    first = asyncio.create_task(bucket.acquire(1.0))
    second = asyncio.create_task(bucket.acquire(1.0))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.wait_for(second, 1.0)
    assert first.cancelled()


def test_binance_buckets_follow_its_per_minute_weights() -> None:
    specs = bucket_specs("binanceusdm", 50, ("fapi", "sapi"))
    # USDⓈ-M: 2,400 weight a minute (ccxt cost = weight); never more in any minute.
    fapi = specs["fapi"]
    assert fapi.capacity == 400
    assert fapi.capacity + 60 * fapi.rate <= 2400
    # Spot: 6,000 weight a minute at ccxt's 0.2 cost per weight.
    assert specs[""].capacity + 60 * specs[""].rate <= 1200
    # The symbol-less open-orders read (40) no longer empties the futures bucket.
    assert fapi.capacity >= 10 * 40


def test_other_exchanges_keep_ccxt_rate_with_a_short_burst() -> None:
    spec = bucket_specs("bybit", 20, ())[""]
    assert spec.rate == pytest.approx(50.0)
    assert spec.capacity == pytest.approx(25.0)


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(BucketSpec(rate=0.0, capacity=1.0))
