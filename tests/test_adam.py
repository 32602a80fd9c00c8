"""Adam's two arithmetics (cogan_tf/adam.py, ``--adam``): each computes what it names, the GANs build the one
their config names, a checkpoint of one restores into the other, and the flag refuses what it cannot do."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C, runner
from cogan_tf.adam import TF1Adam, make_adam
from tests.conftest import run_main_refusal
from tests.tolerance import EPS, K

LR, BETA1, BETA2, EPSILON = 2e-4, 0.5, 0.999, 1e-8


def emulated(grads, one_minus):
    """Adam's update in float32, op by op as TensorFlow's ApplyAdam kernel and Keras's update_step both order
    it, with ``one_minus(beta)``, the float32 1 - beta of each: (var, m, v) after the steps."""
    f = np.float32
    var, m, v = np.ones_like(grads[0]), np.zeros_like(grads[0]), np.zeros_like(grads[0])
    for t, g in enumerate(grads, start=1):
        b1p, b2p = f(BETA1) ** f(t), f(BETA2) ** f(t)
        alpha = f(LR) * np.sqrt(f(1) - b2p) / (f(1) - b1p)
        m = m + (g - m) * one_minus(BETA1)
        v = v + (g * g - v) * one_minus(BETA2)
        var = var - (m * alpha) / (np.sqrt(v) + f(EPSILON))
    return var, m, v


def float32_one_minus(beta):  # TF1's kernel: beta is a float32 tensor, 1 - beta computed in float32
    return np.float32(1) - np.float32(beta)


def double_one_minus(beta):  # Keras: 1 - beta in Python's double, then rounded to float32
    return np.float32(1.0 - beta)


@pytest.mark.parametrize("arithmetic, same, other", [("tf1", float32_one_minus, double_one_minus),
                                                     ("keras", double_one_minus, float32_one_minus)])
def test_each_arithmetic_is_the_one_it_names(arithmetic, same, other):
    """Three updates of 4,096 values: v and the variable within a few float32 roundings of the arithmetic's own
    emulation, and apart from the other's by its 1 - beta2 (1.29e-5 relative in v, a few hundred roundings)."""
    grads = [np.random.default_rng(i).standard_normal(4096).astype(np.float32) for i in range(3)]
    var = tf.Variable(np.ones(4096, np.float32))
    opt = make_adam(arithmetic, learning_rate=LR, beta_1=BETA1, beta_2=BETA2, epsilon=EPSILON)
    assert isinstance(opt, TF1Adam) == (arithmetic == "tf1")
    step = tf.function(lambda g: opt.apply_gradients([(g, var)]))
    for g in grads:
        step(tf.constant(g))
    v = opt._velocities[0].numpy()
    want, theirs = emulated(grads, same), emulated(grads, other)
    np.testing.assert_allclose(v, want[2], rtol=K * 4 * EPS)
    np.testing.assert_allclose(opt._momentums[0].numpy(), want[1], rtol=K * 4 * EPS)
    np.testing.assert_allclose(var.numpy(), want[0], rtol=K * 4 * EPS)
    assert np.median(np.abs(v / theirs[2] - 1)) > 1e-5  # the other arithmetic's v is far off
    assert float32_one_minus(BETA2) / double_one_minus(BETA2) - 1 == pytest.approx(-1.29e-5, rel=0.01)


def test_the_step_runs_the_arithmetic_its_config_names_and_checkpoints_cross(tmp_path):
    """The vanilla GAN's step with --adam tf1 has one ResourceApplyAdam per variable and no other update op;
    with keras none. A tf1 run's optimizer checkpoint restores into a keras one (the same slots)."""
    x = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    gans = {}
    for arithmetic in C.ADAM_ARITHMETICS:
        cfg = C.train_config("vanilla", batch_size=8, seed=1, checkpoint_dir=str(tmp_path / arithmetic), adam=arithmetic)
        gan = runner.make_gan(C.VanillaConfig(), cfg, arrays=[x])
        gan.build()
        graph = tf.function(gan.train_step).get_concrete_function(tf.constant(x)).graph
        types = [op.type for op in graph.get_operations()]
        n_vars = len(gan.g_vars) + len(gan.d_vars)
        assert types.count("ResourceApplyAdam") == (n_vars if arithmetic == "tf1" else 0)
        assert ("AssignSubVariableOp" in types) == (arithmetic == "keras")
        gan.train_step(tf.constant(x))
        gans[arithmetic] = gan
    path = tf.train.Checkpoint(opt=gans["tf1"].d_opt).write(str(tmp_path / "ck"))
    tf.train.Checkpoint(opt=gans["keras"].d_opt).read(path).assert_consumed()
    for a, b in zip(gans["tf1"].d_opt.variables, gans["keras"].d_opt.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_mixed_float16_wraps_the_named_arithmetic(tmp_path):
    from cogan_tf import gan as gan_lib

    cfg = C.train_config("vanilla", batch_size=8, checkpoint_dir=str(tmp_path), mixed_precision="mixed_float16")
    gan = runner.make_gan(C.VanillaConfig(), cfg, arrays=[np.zeros((8, 28, 28, 1), np.uint8)])
    gan_lib.build_gan(gan)
    assert isinstance(gan.g_opt, keras.optimizers.LossScaleOptimizer) and isinstance(gan.g_opt.inner_optimizer, TF1Adam)


@pytest.mark.parametrize("args, message", [
    (["--adam", "sgd"], "error: --adam=sgd: choose tf1 (TF1's ApplyAdam, the original's) or keras (Keras's Adam)"),
    (["--recipe", "paper", "--adam", "keras"], "error: --adam=keras: not for --recipe paper, which trains with the "
                                               "Caffe model's Adam"),
])
def test_main_refuses_a_bad_adam(tmp_path, args, message):
    run_main_refusal(tmp_path, args, message)
