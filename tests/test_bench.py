"""The benchmark: the analytic FLOP counter against hand-computed numbers and against TensorFlow's own
count, and a --quick run writing its JSON. No timing is asserted."""

import json
import os
import subprocess
import sys

import pytest

from cogan_tf import bench
from cogan_tf.config import CoganConfig
from tests.conftest import ROOT


def test_layer_macs_and_params():
    d = bench.dense("d", 3, 4)
    assert (d.macs, d.params) == (12, 16)
    c = bench.conv("c", 2, 2, 3, 5, 3)  # 2x2 output, 3x3 kernel, 3 -> 5 channels
    assert (c.macs, c.params) == (2 * 2 * 9 * 3 * 5, 9 * 3 * 5 + 5)
    t = bench.deconv("t", 2, 2, 3, 5, 3)  # 2x2 input scattered into a larger output
    assert (t.macs, t.params) == (2 * 2 * 9 * 3 * 5, 9 * 3 * 5 + 5)


def test_step_count_of_a_tiny_network():
    a, b = bench.dense("a", 2, 3), bench.dense("b", 3, 4)  # 6 and 12 MACs
    c = bench.StepCount().forward([a, b])
    assert c.flops(batch=5) == 2 * 18 * 5
    # Trained: weight gradients of both, input gradient of b only (a's input is not differentiated).
    c.backward([a, b], weights=True, input_of_first=False)
    assert c.macs_per_example() == 18 + 18 + 12
    assert c.flops(batch=5) == 2 * 48 * 5
    # Passing through (gradients into the input, not of the weights), twice.
    c2 = bench.StepCount().backward([a, b], weights=False, input_of_first=True, times=2)
    assert c2.macs_per_example() == 2 * 18
    assert c2.passes() == {"a": {"fwd": 0, "dx": 2, "dw": 0}, "b": {"fwd": 0, "dx": 2, "dw": 0}}


def test_cogan_step_count_by_hand():
    m = CoganConfig()  # faithful: h1 fed from z, D's h0 with 1 filter
    h1, h2, head = 100 * 6272, 7 * 7 * 25 * 128 * 128, 14 * 14 * 25 * 128
    d_h0, d_h1, d_h2, d_h3 = 14 * 14 * 25, 7 * 7 * 25 * 64, 3136 * 1024, 1024
    G = h1 + h2 + 2 * head  # trunk once, two heads
    D = d_h0 + d_h1 + d_h2 + d_h3  # one domain's D on one batch
    d_update = 4 * D + 4 * D + 4 * (D - d_h0)  # forward, weight grads, input grads but D's first layer
    g_update_d_part = 2 * D + 2 * D  # D forward on both fakes, input gradients through it
    g_backward = G + (G - h1)  # weight grads, input grads but h1's (its input is z)
    recompute = 3 * G + d_update + 2 * (g_update_d_part + g_backward)
    assert bench.cogan_step_count(m).macs_per_example() == recompute
    assert bench.cogan_step_count(m, reuse_g_forward=True).macs_per_example() == recompute - G
    G2 = 2 * (h1 + h2 + head)  # the trunk once per domain
    g_backward2 = 2 * (h1 + h2 + head) + 2 * (h2 + head)
    straight = 3 * G2 + d_update + 2 * (g_update_d_part + g_backward2)
    assert bench.cogan_step_count(m, trunk_per_domain=True).macs_per_example() == straight
    assert bench.cogan_step_count(m).flops(128) == 2 * 128 * recompute


def test_cogan_layer_table_matches_the_model():
    from cogan_tf.networks import build_cogan, unique_variables

    for m in (CoganConfig(), CoganConfig(h0_feeds_h1=True, d_h0_filters=64)):
        g, d = build_cogan(m)
        layers = bench.cogan_layers(m)
        g_params = sum(int(v.numpy().size) for v in unique_variables(g.trainable_variables) if "kernel" in v.path or "bias" in v.path)
        d_params = sum(int(v.numpy().size) for v in unique_variables(d.trainable_variables) if "kernel" in v.path or "bias" in v.path)
        assert g_params == bench.param_count([v for k, v in layers.items() if k.startswith("g")])
        assert d_params == bench.param_count([v for k, v in layers.items() if k.startswith("d")])


def test_analytic_count_equals_tensorflows_for_the_corrected_network():
    """The faithful network is checked by the --quick run below; here h0 -> h1 and a 64-filter D h0."""
    import tensorflow as tf
    import numpy as np
    from cogan_tf import config as C, runner

    m = CoganConfig(h0_feeds_h1=True, d_h0_filters=64)
    x = np.zeros((4, 28, 28, 1), np.uint8)
    gan = runner.make_gan(m, C.TrainConfig(batch_size=4, seed=0, checkpoint_dir="/nonexistent"), arrays=[x, x])
    gan.build()
    fn = tf.function(gan.train_step)
    prof = bench.profiler_flops(fn.get_concrete_function(tf.constant(x), tf.constant(x)))
    assert prof["matmul_conv"] == bench.cogan_step_count(m, reuse_g_forward=True).flops(4)
    assert prof["total"] > prof["matmul_conv"] and prof["graph_total"] >= prof["total"]
    assert prof["uncounted"] == []


def test_quick_run_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", "--quick", "--models", "cogan",
                        "--cogan_variants", "straightforward,recompute", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    for key in ("command", "machine", "matmul", "rows", "ratios", "skipped", "loadavg_start", "loadavg_end"):
        assert key in res
    assert res["matmul"]["gflops"] > 0
    assert [row["variant"] for row in res["rows"]] == ["port", "recompute", "straightforward"]
    for row in res["rows"]:
        for key in ("steps_per_s", "images_per_s", "step_ms", "flops_analytic", "gflops_per_s",
                    "fraction_of_matmul", "peak_rss_mb", "first_call_s", "profiler"):
            assert key in row, key
        assert row["batch"] == 4 and row["steps_per_s"] > 0
        # The cross-check: TensorFlow counts the same matmul/conv FLOPs on the step's graph.
        assert row["profiler"]["matmul_conv"] == row["flops_analytic"]
    assert set(res["ratios"]) == {"cogan port / straightforward (steps/s)", "cogan recompute / straightforward (steps/s)"}
    assert "straightforward" in r.stdout and "GFLOP/s" in r.stdout
