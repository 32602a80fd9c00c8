"""cogan_tf/bench/rows.py, the benchmark's rows and their timing: which rows a model's variants give (the paper
recipe's two updates, their XLA versions), each row built, warmed up and timed round-robin, its FLOPs per step
from the FLOP model."""

from cogan_tf.bench import rows as bench_rows


def test_clustergan_paper_rows_run():
    """The paper recipe's two update rows, in this process at batch 4, one warm-up and one timed round,
    without the FLOP cross-check (tests/test_flops.py does it for their steps; the slow --quick runs of
    tests/test_bench.py for every paper row, bfloat16 and the 1:5 cycle included)."""
    assert [(r.variant, r.jit_compile) for r in bench_rows.clustergan_paper_rows(4, False, ["paper", "paper_xla"])] == [
        ("paper_critic", False), ("paper_ge", False), ("paper_critic_xla", True), ("paper_ge_xla", True)]
    assert [r.variant for r in bench_rows.clustergan_paper_rows(4, True, ["paper", "paper_xla"])] == [
        "paper_critic", "paper_ge"]  # --jit_compile: the paper rows are the XLA ones
    rows = bench_rows.clustergan_paper_rows(4, False, ["paper"])
    assert [(r.variant, r.step, r.cycle) for r in rows] == [("paper_critic", "paper_critic", 1),
                                                            ("paper_ge", "paper_ge", 1)]
    recs = [bench_rows.build_row(row) for row in rows]
    for row, rec in zip(rows, recs):
        bench_rows.prepare_row(row, rec, warmup=1, profile=False)
    done = [bench_rows.finish_row(rec, t) for rec, t in zip(recs, bench_rows.time_round_robin(recs, 1))]
    assert all(r["steps_per_s"] > 0 and r["batch"] == 4 for r in done)
    assert [r["flops_analytic"] for r in done] == [18_323_341_312 / 16, 13_385_334_784 / 16]  # batch 4 of 64
