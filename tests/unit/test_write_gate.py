"""The write gate: once closed no write starts, and close waits for the writes in progress."""

import threading

from objget.engine._copy import WriteGate


def test_open_gate_lets_writes_through_and_close_bars_new_ones():
    gate = WriteGate()
    assert gate.enter()
    gate.leave()
    assert gate.close(timeout=1)
    assert not gate.enter()


def test_close_waits_for_the_write_in_progress():
    gate = WriteGate()
    assert gate.enter()  # a write in progress
    assert not gate.close(timeout=0.05)  # it has not returned: close says so
    assert not gate.enter()  # but no new write starts meanwhile
    done = threading.Event()

    def closer():
        if gate.close(timeout=10):
            done.set()

    t = threading.Thread(target=closer)
    t.start()
    assert not done.wait(0.1)  # still waiting for the write
    gate.leave()
    t.join(timeout=10)
    assert done.is_set()
