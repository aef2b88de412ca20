from objget._throttle import RateLimiter


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
