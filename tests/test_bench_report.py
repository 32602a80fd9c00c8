"""cogan_tf/bench/report.py, the benchmark's table: a run's result as the text ``python -m cogan_tf.bench`` prints,
the machine and the matmul rate first, one aligned line per row with whether TensorFlow's FLOP count agrees, then
the ratios and the models skipped."""

from cogan_tf.bench import report


def row(model, variant, **kw):
    r = dict(model=model, variant=variant, batch=128, step_ms=50.0, steps_per_s=20.0, images_per_s=2560.0,
             flops_analytic=12.3e9, gflops_per_s=246.0, fraction_of_matmul=0.5, peak_rss_mb=1500.0, tf_peak_mb=None)
    r.update(kw)
    return r


RESULT = {
    "machine": {"cpu": "Test CPU", "cores": 2, "tensorflow": "2.x", "device": "CPU:0 (test)", "tf32": False},
    "loadavg_start": 0.5, "loadavg_end": 1.5,
    "matmul": {"n": 1024, "gflops": 123.45, "repeats": 5, "calls": 1},
    "rows": [row("cogan", "port", flops_check={"match": True}),
             row("cogan", "straightforward", step_ms=100.0, steps_per_s=10.0, flops_check={"match": False},
                 tf_peak_mb=300.0),
             row("vanilla", "port")],
    "ratios": {"cogan port / straightforward (steps/s)": 2.0},
    "skipped": {"clustergan": "not asked for"},
}


def test_the_table_of_a_result():
    lines = report.format_table(RESULT).splitlines()
    assert lines[0] == "machine: Test CPU, 2 cores, TF 2.x; load average 0.5 -> 1.5"
    assert lines[1] == "steps on: CPU:0 (test); TF32 off"
    assert lines[2].startswith("float32 matmul 1024x1024: 123.5 GFLOP/s (median of 5 blocks of 1,")
    head = lines[4]
    assert head.split() == ["model", "variant", "batch", "step", "ms", "steps/s", "img/s", "GFLOP/step", "TF", "count",
                            "GFLOP/s", "%matmul", "RSS", "MB", "TF", "MB"]
    rows = lines[6:9]
    assert [r.split() for r in rows] == [
        ["cogan", "port", "128", "50.0", "20.00", "2560", "12.30", "same", "246.0", "50%", "1500", "nan"],
        ["cogan", "straightforward", "128", "100.0", "10.00", "2560", "12.30", "DIFF", "246.0", "50%", "1500", "300"],
        ["vanilla", "port", "128", "50.0", "20.00", "2560", "12.30", "n/a", "246.0", "50%", "1500", "nan"]]
    assert all(len(r) == len(head) for r in rows)  # the columns line up under the header
    assert lines[-2:] == ["cogan port / straightforward (steps/s): 2.00x", "skipped clustergan: not asked for"]
