from objget.engine._throttle import RateLimiter


def test_rate_is_respected_with_fake_clock():
    now = [0.0]
    slept = []

    def wait(s):
        slept.append(s)
        now[0] += s

    lim = RateLimiter(1_000_000, clock=lambda: now[0], wait=wait)
    for _ in range(100):
        lim.take(100_000)
    # 10 MB at 1 MB/s minus the initial burst of 0.25 s
    assert 9.5 <= now[0] <= 10.0
    assert all(s > 0 for s in slept)


def test_bound_views_share_one_bucket_and_sleep_through_their_own_wait():
    """Two takers (two engines of a batch) draw from one bucket: together they get the rate,
    not twice it; each sleeps through the wait it was bound with."""
    now = [0.0]
    slept: dict[str, float] = {"a": 0.0, "b": 0.0}

    def waiter(name):
        def wait(s):
            slept[name] += s
            now[0] += s

        return wait

    shared = RateLimiter(1_000_000, clock=lambda: now[0])
    a, b = shared.bound(waiter("a")), shared.bound(waiter("b"))
    assert a.chunk == b.chunk == shared.chunk
    for _ in range(50):
        a.take(100_000)
        b.take(100_000)
    # 10 MB from the one bucket at 1 MB/s (less its burst of 0.25 s), shared by both
    assert 9.5 <= now[0] <= 10.0
    assert slept["a"] > 4 and slept["b"] > 4


def test_many_threads_on_one_limiter_get_the_rate_together():
    import threading
    import time

    shared = RateLimiter(400_000)  # burst 100 kB
    stop = threading.Event()

    def worker():
        view = shared.bound(stop.wait)
        for _ in range(10):
            view.take(25_000)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.monotonic() - started
    # 1 MB at 400 kB/s less the 100 kB burst: at least 2.25 s, not a quarter of it
    assert elapsed >= 2.2, elapsed


def test_a_cancelled_taker_stops_sleeping_at_once():
    import threading
    import time

    shared = RateLimiter(16 * 1024)
    stop = threading.Event()
    view = shared.bound(stop.wait)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    view.take(200 * 1024)  # ~12 s of debt
    assert time.monotonic() - started < 5
