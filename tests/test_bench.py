"""The benchmark: the analytic FLOP counter against hand-computed numbers and against TensorFlow's own
count, and a --quick run writing its JSON. No timing is asserted."""

import json
import os
import stat
import subprocess
import sys

import pytest

from cogan_tf.bench import rows as bench_rows, steps as step_lib
from cogan_tf.bench import flops
from cogan_tf.config import CoganConfig
from tests.conftest import ROOT, out_cases, without_tensorflow


def param_count(layers):
    """Weights of a layer table (what the model's variables must hold)."""
    return sum(layer.params for layer in layers)


def test_layer_macs_and_params():
    d = flops.dense("d", 3, 4)
    assert (d.macs, d.params) == (12, 16)
    c = flops.conv("c", 4, 4, 3, 5, 3)  # 4x4 -> 2x2 (stride 2, SAME), 3x3 kernel, 3 -> 5 channels
    assert (c.macs, c.params) == (2 * 2 * 9 * 3 * 5, 9 * 3 * 5 + 5)
    assert c.tf_backprop == c.macs
    v = flops.conv("v", 7, 7, 3, 5, 3, padding="valid")  # 7x7 -> 3x3
    assert v.macs == 3 * 3 * 9 * 3 * 5
    assert v.tf_backprop == 7 * 7 / 4 * 9 * 3 * 5  # TensorFlow counts its backprop ops by the input size
    t = flops.deconv("t", 2, 2, 3, 5, 3)  # 2x2 input scattered into a larger output
    assert (t.macs, t.params) == (2 * 2 * 9 * 3 * 5, 9 * 3 * 5 + 5)


def test_step_count_of_a_tiny_network():
    a, b = flops.dense("a", 2, 3), flops.dense("b", 3, 4)  # 6 and 12 MACs
    c = flops.StepCount().forward([a, b])
    assert c.flops(batch=5) == 2 * 18 * 5
    # Trained: weight gradients of both, input gradient of b only (a's input is not differentiated).
    c.backward([a, b], weights=True, input_of_first=False)
    assert c.macs_per_example() == 18 + 18 + 12
    assert c.flops(batch=5) == 2 * 48 * 5
    # Passing through (gradients into the input, not of the weights), twice.
    c2 = flops.StepCount().backward([a, b], weights=False, input_of_first=True, times=2)
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
    assert flops.cogan_step_count(m).macs_per_example() == recompute
    assert flops.cogan_step_count(m, reuse_g_forward=True).macs_per_example() == recompute - G
    G2 = 2 * (h1 + h2 + head)  # the trunk once per domain
    g_backward2 = 2 * (h1 + h2 + head) + 2 * (h2 + head)
    straight = 3 * G2 + d_update + 2 * (g_update_d_part + g_backward2)
    assert flops.cogan_step_count(m, trunk_per_domain=True).macs_per_example() == straight
    assert flops.cogan_step_count(m).flops(128) == 2 * 128 * recompute


def weight_count(variables):
    return sum(int(v.numpy().size) for v in variables if v.path.endswith(("kernel", "bias")))


def test_layer_tables_match_the_models():
    from cogan_tf import config as C
    from cogan_tf.cogan_networks import build_cogan, unique_variables

    for m in (CoganConfig(), CoganConfig(h0_feeds_h1=True, d_h0_filters=64)):
        g, d = build_cogan(m)
        layers = flops.cogan_layers(m)
        assert weight_count(unique_variables(g.trainable_variables)) == param_count(
            [v for k, v in layers.items() if k.startswith("g")])
        assert weight_count(unique_variables(d.trainable_variables)) == param_count(
            [v for k, v in layers.items() if k.startswith("d")])
    for name, tables, overrides in (("vanilla", flops.vanilla_layers, {}), ("clustergan", flops.clustergan_layers, {}),
                                    ("clustergan", flops.clustergan_layers, C.CLUSTERGAN_RECIPES["paper"])):
        gan, _ = bench_rows.make_model(name, 4, False, model_overrides=overrides)
        nets = {"g": gan.generator, "d": gan.discriminator, "e": getattr(gan, "encoder", None)}
        for k, layers in tables(gan.model_cfg).items():
            # The paper's G has BatchNorm betas (no gammas), not in the layer table: weights and biases only.
            assert weight_count(nets[k].trainable_variables) == param_count(layers), (name, overrides, k)


def test_vanilla_and_clustergan_counts_by_hand():
    from cogan_tf import config as C

    for h in (128, 1024):  # the default (the original's width) and --hidden_size 1024
        g = 128 * h + 2 * h * h + h * 784
        d = 784 * h + 2 * h * h + h
        # D update: G forward, D forward twice, D weight grads twice, D input grads but the first layer's;
        # G update: G and D forward, input grads through all of D, G's weight grads and input grads but h0's.
        expect = g + 2 * d + 2 * d + 2 * (d - 784 * h) + g + d + d + g + (g - 128 * h)
        assert flops.vanilla_step_count(C.VanillaConfig(hidden=h)).macs_per_example() == expect
    assert C.VanillaConfig().hidden == 128
    c = flops.clustergan_step_counts(C.ClusterGanConfig())
    G = 40 * 1024 + 1024 * 6272 + 7 * 7 * 16 * 128 * 64 + 14 * 14 * 16 * 64
    trunk = 13 * 13 * 16 * 64 + 5 * 5 * 16 * 64 * 128 + 3200 * 1024
    D, E = trunk + 1024, trunk + 1024 * 40
    c0 = 13 * 13 * 16 * 64
    assert c["d"].macs_per_example() == G + 2 * D + 2 * D + 2 * (D - c0)
    assert c["ge"].macs_per_example() == G + E + D + 2 * E + D + G + (G - 40 * 1024)


def test_clustergan_paper_counts_by_hand():
    """The paper recipe's critic update (with its gradient penalty) and G+E update, pass by pass."""
    from cogan_tf import config as C

    m = C.clustergan_config("paper")
    c = flops.clustergan_step_counts(m)
    G = 40 * 1024 + 1024 * 6272 + 7 * 7 * 16 * 128 * 64 + 14 * 14 * 16 * 64
    c0, c1, h2 = 14 * 14 * 16 * 64, 7 * 7 * 16 * 64 * 128, 6272 * 1024  # "same" convs: 28 -> 14 -> 7
    D, E = c0 + c1 + h2 + 1024, c0 + c1 + h2 + 1024 * 40
    # Wasserstein terms: D on real and fake, D's weight gradients, input gradients but the first layer's.
    wasserstein = 2 * D + 2 * D + 2 * (D - c0)
    # Penalty: D on x_hat but its last layer (the scores are not needed, only their input gradient);
    # that input gradient, through all of D; its own gradient with respect to D's weights: a weight
    # gradient per layer, and a forward-direction pass per layer but the last (its incoming gradient is
    # the constant ones of the summed scores).
    penalty = (D - 1024) + D + D + (D - 1024)
    assert c["d"].macs_per_example() == G + wasserstein + penalty
    assert c["d"].flops(64) == 2 * 64 * (G + wasserstein + penalty) == 18_323_341_312
    assert c["ge"].macs_per_example() == G + E + D + 2 * E + D + G + (G - 40 * 1024)
    assert c["ge"].flops(64) == 13_385_334_784
    # TensorFlow's graph of the plain step also backpropagates the zeros of LeakyReLU's second derivative
    # through D's forward pass on x_hat: weight gradients of c0, c1, h2 and input gradients of c1, h2.
    z = flops.clustergan_step_counts(m, zero_path=True)
    assert z["d"].macs_per_example() == c["d"].macs_per_example()
    assert z["d"].macs_per_example(tf_convention=True) - c["d"].macs_per_example(tf_convention=True) == (
        c0 + c1 + h2 + c1 + h2)
    # The original recipe's BCE step has no penalty, so nothing changes for it.
    o = flops.clustergan_step_counts(C.ClusterGanConfig(), zero_path=True)["d"]
    assert o.macs_per_example(tf_convention=True) == flops.clustergan_step_counts(C.ClusterGanConfig())[
        "d"].macs_per_example(tf_convention=True)


def test_analytic_count_equals_tensorflows_for_the_clustergan_paper_steps():
    """The paper recipe's critic update (gradient penalty included), G+E update, and the loop's step
    (the critic update, the G+E update in its conditional's true branch), at batch 4."""
    import tensorflow as tf

    gan, inputs = bench_rows.make_model("clustergan", 4, False, model_overrides=bench_rows.PAPER)
    c = flops.clustergan_step_counts(gan.model_cfg)
    for step, part in (("paper_critic", "d"), ("paper_ge", "ge")):
        prof = flops.profiler_flops(tf.function(step_lib.STEPS[step](gan)).get_concrete_function(*inputs))
        assert prof["matmul_conv"] == c[part].flops(4, tf_convention=True), step
        assert prof["uncounted"] == []
    prof = flops.profiler_flops(tf.function(gan.train_step).get_concrete_function(*inputs))
    assert prof["matmul_conv"] == c["d"].flops(4, tf_convention=True)
    assert prof["branches"]["cond/then_branch"]["matmul_conv"] == c["ge"].flops(4, tf_convention=True)
    assert prof["branches"]["cond/else_branch"]["matmul_conv"] == 0  # the held losses
    # With Keras's own layers the critic's graph also backpropagates LeakyReLU's zero second derivative.
    plain = flops.clustergan_step_counts(gan.model_cfg, zero_path=True)
    prof = flops.profiler_flops(tf.function(step_lib.STEPS["paper_critic_plain"](gan)).get_concrete_function(*inputs))
    assert prof["matmul_conv"] == plain["d"].flops(4, tf_convention=True) > c["d"].flops(4, tf_convention=True)


def test_trace_finds_the_matmuls_on_zero_gradients():
    """tools/trace_step.py (cogan_tf/bench/trace.py) marks the matmuls and convolutions whose gradient operand
    is exactly zero: those the plain critic's graph runs (LeakyReLU's zero second derivative backpropagated
    through D on the interpolates; as many as the FLOP model's zero passes), none in the port's."""
    import tensorflow as tf
    from cogan_tf.bench import trace

    gan, inputs = bench_rows.make_model("clustergan", 2, False, model_overrides=bench_rows.PAPER)
    found = {}
    for row in ("paper_critic", "paper_critic_plain"):
        graph = tf.function(step_lib.STEPS[row](gan)).get_concrete_function(*inputs).graph
        zero = trace.zero_ops(graph)
        found[row] = sorted(op.type for op in graph.get_operations()
                            if op.name in zero and op.type in flops.MATMUL_OPS)
    assert found["paper_critic"] == []
    # h2's weight and input gradients, c1's and c0's filter and input gradients; c0's input gradient (into
    # x_hat, no variable) is in the graph but nothing uses it: pruned, so neither TensorFlow's count of
    # the ops that run nor the FLOP model's zero passes has it.
    assert found["paper_critic_plain"] == ["Conv2DBackpropFilter", "Conv2DBackpropFilter", "Conv2DBackpropInput",
                                           "Conv2DBackpropInput", "MatMul", "MatMul"]
    passes = flops.clustergan_step_counts(gan.model_cfg, zero_path=True)["d"]
    assert sum(passes.zero_dx.values()) + sum(passes.zero_dw.values()) == 5


@pytest.mark.parametrize("variant", ["port", "plain_grads", "plain_elementwise"])
def test_trace_of_a_row_counts_what_tensorflow_counts(variant):
    """A traced CoGAN step (batch 4, one call): every matmul and convolution that ran, oneDNN's fused ones
    included, found in the graph, their FLOPs adding up to TensorFlow's count of the step (the benchmark's
    cross-check); the kinds adding up to the ops' time; the dense input gradients a kind of their own, as
    BatchMatMulV2 (the port's) or MatMul with a transposed operand (the plain one), never a forward matmul;
    the sub-pixel stem gradients (Conv2D ops of a custom gradient, outside the tape's name scope) as input
    gradients, not as forward convolutions."""
    from cogan_tf.bench import trace

    t = trace.trace_step("cogan", variant, batch=4, warmup=1, calls=1, matmul_n=0)
    row = trace.find_row("cogan", variant, 4)
    assert sum(o["flops"] for o in t.ops.values()) == row.parts["step"][0].flops(4, tf_convention=True)
    assert all(o["flops"] for o in t.ops.values() if trace.runs_matmul(o["kernel"]))
    kinds = {k["kind"]: k for k in t.kinds()}
    assert sum(k["ms"] for k in kinds.values()) == pytest.approx(t.total_ms)
    dense_dx = [o for o in t.ops.values() if o["kind"] == "dense input gradients (dy @ W^T)"]
    assert {("BatchMatMul" in o["kernel"]) for o in dense_dx} == {variant != "plain_grads"}
    # D's h2 and h3 in both domains' G-update passes and in the D update's fakes and reals: 2 x (2 + 4) per step,
    # and the two G updates' D passes.
    assert len(dense_dx) >= 8
    assert "Adam updates" in kinds and "BatchNorm" in kinds and kinds["conv filter gradients"]["flops"] > 0
    # The PReLUs and Q2's BatchNorms are XLA clusters, or (plain_elementwise) their written gradients' ops, which
    # the trace finds by their name scopes.
    written = [o for o in t.ops.values() if "prelu_grad" in o["name"] or "batchnorm_grad" in o["name"]]
    assert bool(written) == (variant == "plain_elementwise")
    assert all(o["kind"] == ("BatchNorm" if "batchnorm_grad" in o["name"] else "activations (PReLU, LeakyReLU)")
               for o in written)
    # D's stems, 2 convolutions x 2 domains x 4 D passes (real and fake in the D update, the two G updates),
    # and the sub-pixel heads' forward pass of the two G forward passes.
    assert len([o for o in t.ops.values() if o["kind"] == "conv forward"]) == 16 + 2
    # The XLA clusters (the PReLUs, Q2's BatchNorm with its PReLU) are timed as runs of compiled clusters.
    assert ("XLA clusters (fused activations and BatchNorm)" in kinds) == (variant != "plain_elementwise")
    text = trace.format_trace(t)
    assert text.count("\n| ") == len(kinds) + 3  # the header, each kind, the two totals
    with pytest.raises(ValueError, match="cogan:loop: no such row"):
        trace.find_row("cogan", "loop")


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
    prof = flops.profiler_flops(fn.get_concrete_function(tf.constant(x), tf.constant(x)))
    port = flops.cogan_step_count(m, reuse_g_forward=True, subpixel_heads=True, subpixel_stem_grad=True)
    # TensorFlow counts the heads' forward pass and D's stem input gradients as the sub-pixel convolutions it
    # runs (zero taps included: 36 per input pixel for the deconv's 25); the table counts the deconv's own work.
    assert prof["matmul_conv"] == port.flops(4, tf_convention=True)
    assert port.flops(4) == flops.cogan_step_count(m, reuse_g_forward=True).flops(4)
    heads = 2 * 2 * 2 * 4 * 14 * 14 * 128 * (36 - 25)  # FLOPs = 2 x MACs; 2 forward passes; 2 heads; batch 4
    # Per domain: h1's input gradient in the D update (real and fake) and in both G updates, h0's in the G
    # updates only (its input is an image).
    stems = 2 * 2 * 4 * (4 * 7 * 7 * 64 * 64 + 2 * 14 * 14 * 1 * 64) * (36 - 25)
    assert port.flops(4, tf_convention=True) - port.flops(4) == heads + stems
    # tf.compat.v1.profiler's own sum, over the step's graph without the functions it calls (the XLA clusters).
    assert prof["profiler_graph_total"] == prof["graph_own"] < prof["graph_total"]
    assert prof["total"] > prof["matmul_conv"] and prof["graph_total"] >= prof["total"]
    assert prof["uncounted"] == []


def test_clustergan_paper_rows_run():
    """The paper recipe's two update rows, in this process at batch 4, one warm-up and one timed round,
    without the FLOP cross-check (the test above does it for their steps; the slow --quick run below
    for every paper row, bfloat16 and the 1:5 cycle included)."""
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


def test_cogan_paper_count_by_hand():
    """The paper's network (docs/ORIGINAL.md §5.4) per z: G's five layers once (the output layer once per
    domain), D on four batches in its update and on two in G's; 203.8 GFLOP a step at batch 128."""
    from cogan_tf import config as C

    m = C.cogan_config("paper")
    l0, l1, l2, l3, l4 = 100 * 16384, 16 * 9 * 1024 * 512, 49 * 9 * 512 * 256, 169 * 9 * 256 * 128, 625 * 36 * 128
    d0, d1, d2, d3 = 576 * 25 * 20, 64 * 25 * 20 * 50, 800 * 500, 500 * 2
    G, D = l0 + l1 + l2 + l3 + 2 * l4, d0 + d1 + d2 + d3
    d_update = G + 4 * D + 4 * D + 4 * (D - d0)
    g_update = G + 2 * D + 2 * D + G + (G - l0)
    c = flops.cogan_paper_step_count(m)
    assert c.macs_per_example() == d_update + g_update
    assert round(c.flops(128) / 1e9, 1) == 203.8
    # Fewer shared G layers: each unshared one runs per domain (two forward passes, weight and input gradients
    # once more). D's sharing changes nothing.
    two = flops.cogan_paper_step_count(C.cogan_config("paper", g_shared_layers=2, d_shared_layers=0))
    assert two.macs_per_example() - c.macs_per_example() == 4 * (l2 + l3)
    # The conditional GAN: G on both bits (2 rows a z), one output layer, one input more (the bit).
    cond = flops.cogan_paper_step_count(C.cogan_config("conditional"))
    G2 = 2 * ((101 * 16384) + l1 + l2 + l3 + l4)
    D2 = D + 576 * 25 * 20  # conv0 sees two channels
    assert cond.macs_per_example() == (G2 + 4 * D2 + 4 * D2 + 4 * (D2 - 2 * d0)) + (G2 + 4 * D2 + G2 + G2 - 2 * 101 * 16384)


@pytest.mark.parametrize("variant", ["paper", "paper_plain", "conditional"])
def test_analytic_count_equals_tensorflows_for_the_cogan_paper_steps(variant):
    """The paper's step, its plain version (l1's forward a transposed convolution) and the conditional GAN's,
    at batch 4: TensorFlow's count of the matmuls and convolutions equals the model's, pass by pass; and the
    layer table holds the networks' weights (the paper's BatchNorm betas and PReLU slopes aside)."""
    import tensorflow as tf

    (row,) = bench_rows.cogan_paper_rows(4, False, [variant])
    gan, inputs = bench_rows.make_model("cogan", 4, False, model_overrides=row.model_overrides)
    step = step_lib.STEPS[row.step](gan) if row.step else gan.train_step
    prof = flops.profiler_flops(tf.function(step).get_concrete_function(*inputs))
    assert prof["matmul_conv"] == row.parts["step"][0].flops(4, tf_convention=True)
    assert prof["uncounted"] == []
    layers = flops.cogan_paper_layers(gan.model_cfg)
    for k, net in (("g", gan.generator), ("d", gan.discriminator)):
        weights = [v for v in net.trainable_variables if v.path.endswith(("kernel", "bias"))]
        heads = 2 if (k == "g" and gan.model_cfg.recipe == "paper") else 1  # the output layer twice
        d_stems = 2 if (k == "d" and gan.model_cfg.recipe == "paper") else 1  # D's l0 per domain
        extra = (heads - 1) * layers["g_l4"].params + (d_stems - 1) * layers["d_l0"].params
        assert weight_count(weights) == param_count([v for n, v in layers.items() if n.startswith(k)]) + extra


def quick_run(tmp_path, *args):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", "--quick", "--out", str(out), *args],
                       cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr[-3000:]
    return r, json.loads(out.read_text())


@pytest.mark.slow  # a TensorFlow start and four traced, timed and profiled steps (~17 s); the FLOP model and
# TensorFlow's count are checked above, the flags below
def test_quick_run_writes_json(tmp_path):
    r, res = quick_run(tmp_path)
    for key in ("command", "machine", "matmul", "rows", "ratios", "skipped", "loadavg_start", "loadavg_end"):
        assert key in res
    assert res["matmul"]["gflops"] > 0
    assert [(row["model"], row["variant"]) for row in res["rows"]] == [
        ("cogan", "port"), ("cogan", "straightforward"), ("vanilla", "port"), ("clustergan", "port"),
        ("clustergan", "paper_critic"), ("clustergan", "paper_ge")]
    assert res["skipped"] == {}
    for row in res["rows"]:
        for key in ("steps_per_s", "images_per_s", "step_ms", "flops_analytic", "gflops_per_s",
                    "fraction_of_matmul", "peak_rss_mb", "first_call_s", "profiler", "flops_check"):
            assert key in row, key
        assert row["batch"] == 4 and row["steps_per_s"] > 0 and row["flops_analytic"] > 0
        # The cross-check: TensorFlow counts the same matmul/conv FLOPs on the step's graph.
        assert row["flops_check"]["match"], row["flops_check"]
    assert res["rows"][3]["cycle"] == 5  # ClusterGAN: timed over whole 1:5 cycles
    assert res["rows"][4]["cycle"] == res["rows"][5]["cycle"] == 1  # the paper's two updates, each on its own
    assert list(res["ratios"]) == ["cogan port / straightforward (steps/s)"]
    assert "straightforward" in r.stdout and "GFLOP/s" in r.stdout


@pytest.mark.slow  # a second TensorFlow start and five more traced steps (~25 s); the rows' code is tested above
def test_quick_run_of_the_lever_and_precision_rows(tmp_path):
    """The rows that isolate a lever or time --mixed_precision run, and TensorFlow's FLOP count agrees
    with the analytic one for each (the sub-pixel heads counted apart only where the row uses them)."""
    _, res = quick_run(tmp_path, "--models", "cogan", "--cogan_variants",
                       "deconv_heads,unfused_bn,no_reuse,bfloat16,bn_per_feature,dense_matmul_grad,fused_scalar_bn,"
                       "stem_deconv_grad,plain_grads")
    rows = {row["variant"]: row for row in res["rows"]}
    assert set(rows) == {"port", "bfloat16", "no_reuse", "deconv_heads", "unfused_bn", "bn_per_feature",
                         "dense_matmul_grad", "fused_scalar_bn", "stem_deconv_grad", "plain_grads"}
    for name, row in rows.items():
        assert row["flops_check"]["match"], (name, row["flops_check"])
        assert row["steps_per_s"] > 0
    # Same useful work with or without the sub-pixel heads; TensorFlow sees the zero taps only with them.
    assert rows["deconv_heads"]["flops_analytic"] == rows["port"]["flops_analytic"]
    tf_port = rows["port"]["flops_check"]["tensorflow"]["step"]
    assert tf_port > rows["deconv_heads"]["flops_check"]["tensorflow"]["step"]
    # The sub-pixel stem gradients too: the layers as first written and the rows without that lever have none.
    tf_plain_stem = rows["stem_deconv_grad"]["flops_check"]["tensorflow"]["step"]
    assert tf_plain_stem < tf_port
    assert rows["unfused_bn"]["flops_check"]["tensorflow"]["step"] == rows["plain_grads"]["flops_check"][
        "tensorflow"]["step"] == tf_plain_stem
    # Q2's scalar statistics and the dense layers' written gradients change no count.
    for name in ("bn_per_feature", "fused_scalar_bn", "dense_matmul_grad"):
        assert rows[name]["flops_check"]["tensorflow"]["step"] == tf_port, name
    assert set(res["ratios"]) == {"cogan port / dense_matmul_grad (steps/s)", "cogan port / fused_scalar_bn (steps/s)",
                                  "cogan port / stem_deconv_grad (steps/s)", "cogan port / plain_grads (steps/s)"}


@pytest.mark.slow  # a third TensorFlow start and seven more traced steps (~30 s); each row's step is tested above
def test_quick_run_of_the_clustergan_paper_rows(tmp_path):
    """All the paper recipe's rows in a --quick run: TensorFlow's count agrees with the analytic one for
    each, the 1:5 cycle is five critic updates and one G+E update per five steps, and the bfloat16 rows
    get their ratio to the float32 ones."""
    r, res = quick_run(tmp_path, "--models", "clustergan", "--clustergan_variants",
                       "paper,paper_cycle,paper_bfloat16,paper_plain")
    rows = {row["variant"]: row for row in res["rows"]}
    assert list(rows) == ["port", "paper_critic", "paper_ge", "paper_critic_bf16", "paper_ge_bf16",
                          "paper_critic_plain", "paper_ge_plain", "paper_cycle"]
    for name, row in rows.items():
        assert row["flops_check"]["match"], (name, row["flops_check"])
        assert row["steps_per_s"] > 0 and row["batch"] == 4
    assert rows["paper_cycle"]["cycle"] == 5
    per_step = (5 * rows["paper_critic"]["flops_analytic"] + rows["paper_ge"]["flops_analytic"]) / 5
    assert rows["paper_cycle"]["flops_analytic"] == pytest.approx(per_step, rel=1e-12)
    # The written gradients change no useful work; TensorFlow sees the zero passes of the plain critic.
    assert rows["paper_critic_plain"]["flops_analytic"] == rows["paper_critic"]["flops_analytic"]
    assert (rows["paper_critic_plain"]["flops_check"]["tensorflow"]["step"]
            > rows["paper_critic"]["flops_check"]["tensorflow"]["step"])
    assert set(res["ratios"]) == {"clustergan paper_critic_bf16 / paper_critic (steps/s)",
                                  "clustergan paper_ge_bf16 / paper_ge (steps/s)",
                                  "clustergan paper_critic / paper_critic_plain (steps/s)",
                                  "clustergan paper_ge / paper_ge_plain (steps/s)"}
    assert "paper_critic_bf16" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "error: --steps=0: must be 1 or more"),
    (["--batch_size=-4"], "error: --batch_size=-4: must be 0 or more"),
    (["--models", "foo"], "error: --models=foo: choose from cogan, vanilla, clustergan"),
    (["--matmul_n=-1"], "error: --matmul_n=-1: must be 1 or more"),
    (["--intra_op_threads=-3"], "error: --intra_op_threads=-3: must be 0 or more"),
    (["--cogan_variants", "port,fast"], "error: --cogan_variants=port,fast: port, fast unknown; choose from "
     "straightforward, recompute, unfused_heads, no_reuse, deconv_heads, unfused_bn, dense_matmul_grad, "
     "fused_scalar_bn, stem_deconv_grad, plain_grads, tf_prelu, tf_bn_prelu, plain_elementwise, "
     "plain_ops, xla, bfloat16, float16, loop, "
     "bn_per_feature, paper, paper_plain, paper_deconv, paper_tf_prelu, paper_xla, conditional, torch_eager"),
    (["--clustergan_variants", "paper,paper_jit"], "error: --clustergan_variants=paper,paper_jit: paper_jit "
     "unknown; choose from paper, paper_cycle, paper_bfloat16, paper_plain, paper_xla"),
    (["--batch_size", "100000"], "error: --batch_size=100000: must be 8192 or less (see --help)"),
    (["--matmul_n", "100000"], "error: --matmul_n=100000: must be 8192 or less (see --help)"),
])
def test_bad_flags_refused_in_one_line_before_tensorflow(tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", "--out", str(tmp_path / "b.json")] + args,
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=without_tensorflow(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "b.json").exists()


def test_the_pytorch_row_is_refused_in_one_line_without_pytorch(tmp_path):
    env = without_tensorflow(tmp_path)
    shim = tmp_path / "no_torch" / "torch"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('no PyTorch here')\n")
    env["PYTHONPATH"] = os.pathsep.join([str(shim.parent), env["PYTHONPATH"]])
    r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", "--out", str(tmp_path / "b.json"), "--models", "cogan",
                        "--cogan_variants", "straightforward,torch_eager"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: --cogan_variants=torch_eager needs PyTorch, which cogan_tf does not depend on: pip install torch"]
    assert not (tmp_path / "b.json").exists()


def test_the_pytorch_peer_is_the_ports_network_and_updates():
    """The benchmark's PyTorch row (optional: PyTorch is not a dependency) holds the port's weights, shape for
    shape in count, makes images of the port's shape, and its step trains both networks but never g_h0 with its
    BatchNorm and PReLU, which the faithful network does not call (no gradient, as in the port)."""
    torch = pytest.importorskip("torch", reason="PyTorch is optional: only the benchmark's torch_eager row needs it")
    from cogan_tf.bench import torch_peer
    from cogan_tf.cogan_networks import build_cogan

    cfg = CoganConfig()
    g, d = torch_peer._networks(cfg)
    kg, kd = build_cogan(cfg)
    for ours, theirs in ((kg, g), (kd, d)):
        keras_sizes = sorted(int(v.numpy().size) for v in ours.trainable_variables)
        torch_sizes = sorted(p.numel() for p in theirs.parameters())
        assert torch_sizes == keras_sizes
    fake1, fake2 = g(torch.zeros(2, cfg.z_dim))
    assert tuple(fake1.shape) == tuple(fake2.shape) == (2, 1, 28, 28)
    assert tuple(d.logits(fake1, 1).shape) == (2, 1)
    step, info = torch_peer.build(8, cfg)
    nets = step.networks
    before = [{n: p.detach().clone() for n, p in net.named_parameters()} for net in nets]
    loss = step()
    assert torch.isfinite(loss) and info["torch_threads"] >= 1
    for net, old in zip(nets, before):
        for n, p in net.named_parameters():
            assert torch.equal(p, old[n]) == n.startswith(("h0.", "bn0.", "act0.")), n


def test_a_bad_out_is_refused_before_the_timing(tmp_path):
    shell = without_tensorflow(tmp_path)
    for args, message in out_cases(tmp_path) + [(["--out="], "--out=: no file given; give a file path in a "
                                                              "writable folder")]:
        r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env=shell)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert r.stderr.startswith(f"error: {message}"), (args, r.stderr)
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


def test_trace_tool_runs_a_row_in_a_real_process(tmp_path):
    """tools/trace_step.py end to end (it set TensorFlow's inter-op threads after TensorFlow had started, which
    raised, so every run with the default flags ended in a traceback): a CoGAN row at batch 2, one call."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "trace_step.py"), "--rows", "cogan:port",
                        "--batch", "2", "--calls", "1", "--warmup", "1", "--matmul_n", "64", "--top", "3"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "cogan:port (batch 2)" in r.stdout and "| op kind | ms | share | GFLOP | GFLOP/s | of matmul |" in r.stdout
    assert "| dense input gradients (dy @ W^T) |" in r.stdout and "the 3 longest ops" in r.stdout
