"""cogan_tf/bench/flops.py, the benchmark's FLOP model: the matmul and convolution work of one training step of
each model counted from the layer shapes, pass by pass, against hand-computed numbers; its layer tables hold the
models' weights; and TensorFlow's own count of the ops on the step's graph (:func:`flops.profiler_flops`) is the
same number."""

import pytest

from cogan_tf.bench import rows as bench_rows, steps as step_lib
from cogan_tf.bench import flops
from cogan_tf.config import CoganConfig


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


def test_analytic_count_equals_tensorflows_for_the_corrected_network():
    """The faithful network is checked by the --quick run (tests/test_bench.py); here h0 -> h1 and a 64-filter D h0."""
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
