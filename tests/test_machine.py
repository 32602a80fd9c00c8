"""cogan_tf/bench/machine.py, what the benchmark measures the machine with: timed calls (the first call, which
traces and compiles, apart; then blocks of a cycle of calls, each block waited for and divided by its calls), a
matmul's rate from its times, and the process's resident memory."""

import types

import numpy as np
import pytest

from cogan_tf.bench import machine


def test_time_calls_times_the_first_call_apart_then_each_call_of_a_timed_block(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(machine, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    calls = []

    def step(x):
        calls.append(x)
        now[0] += 5.0 if len(calls) == 1 else 0.25 * len(calls)  # the first call traces; the later ones slow down
        return x

    t = machine.time_calls(step, (7,), warmup=2, steps=3, cycle=2)
    # The first call, the rest of the warm-up (one more cycle), then three timed blocks of two calls.
    assert calls == [7] * 9
    assert t["first_call_s"] == 5.0
    # Calls 4+5, 6+7 and 8+9 take 0.25 x 9, 13 and 17 s: per call, half of each block.
    assert t["times_s"] == [1.125, 1.625, 2.125]
    assert (t["median_s"], t["mean_s"], t["min_s"]) == (1.625, 1.625, 1.125)


def test_matmul_record_counts_2n3_flops_a_matmul():
    r = machine.matmul_record(100, [0.5, 2.0, 1.0], calls=3)
    assert r["flops"] == 2 * 100 ** 3 * 3
    assert r["median_s"] == 1.0 and r["repeats"] == 3 and r["calls"] == 3
    assert r["gflops"] == pytest.approx(6e6 / 1.0 / 1e9) and r["best_gflops"] == pytest.approx(6e6 / 0.5 / 1e9)


def test_resident_memory_sees_an_allocation_and_the_peak_is_at_least_the_current():
    before = machine.rss_mb("VmRSS")
    block = np.ones(8 * 2 ** 20)  # 64 MiB, every page written
    after = machine.rss_mb("VmRSS")
    assert after - before > 60, (before, after)
    assert machine.peak_rss_mb() >= after
    assert machine.rss_mb("NoSuchField") is None
    del block
