"""--mixed_precision: every model trains with float16 / bfloat16 compute and float32 variables, float16
with dynamic loss scaling that skips overflowing steps (also under MirroredStrategy), the default stays
float32 and unchanged, the global dtype policy never leaks, checkpoints record the precision, exports
keep float32 signatures, and main.py's flags. (cogan_tf/precision.py's helpers themselves, the policy scope, the
scaled gradient and the replicas' agreement on an overflow: tests/test_precision.py.)"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import config as C
from cogan_tf.adam import TF1Adam
from cogan_tf import runner
from cogan_tf.errors import UsageError
from cogan_tf.cogan_fast import generate_pair
from tests.conftest import MODELS, ROOT, arrays_for, built, train_config

POLICIES = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
# Update attempts per optimizer in two steps: CoGAN 1 D : 2 G per step; ClusterGAN's G+E runs when D's
# update count is a multiple of 5, so a second time if the first D update was skipped.
ATTEMPTS = {"cogan": {"d_optimizer": {2}, "g_optimizer": {4}},
            "vanilla": {"d_optimizer": {2}, "g_optimizer": {2}},
            "clustergan": {"d_optimizer": {2}, "ge_optimizer": {1, 2}}}
INITIAL_SCALE = 2.0 ** 15  # Keras's LossScaleOptimizer default


def networks(gan):
    return [gan.generator, gan.discriminator] + ([gan.encoder] if hasattr(gan, "encoder") else [])


def optimizers(gan):
    return {k: v for k, v in gan.trackables().items() if isinstance(v, keras.optimizers.Optimizer)}


def run_steps(gan, steps=2):
    b = gan.train_cfg.batch_size
    step = tf.function(gan.train_step)
    return [step(*[tf.constant(a[i * b:(i + 1) * b]) for a in gan.training_arrays()]) for i in range(steps)]


def outputs(gan, model):
    """(G's images (the vanilla GAN's tanh mapped to [0, 1]), D's and E's logits, an activation inside G),
    straight from the networks."""
    n = 6
    if model == "cogan":
        z = tf.random.normal([n, 100])
        x = tf.random.uniform([n, 28, 28, 1])
        images = list(gan.generator(z, training=False)) + list(generate_pair(gan.generator, z, training=True))
        return images, [gan.discriminator.logits(x, 1), gan.discriminator.logits(x, 2)], gan.generator.trunk(z)
    if model == "vanilla":
        z = tf.random.normal([n, 128])
        raw = gan.generator(z, training=False)  # tanh: [-1, 1]
        return [(raw + 1.0) / 2.0], [gan.discriminator.logits(raw)], gan.generator.h0(z)
    z = tf.concat([tf.random.normal([n, 30]), tf.one_hot(tf.range(n) % 10, 10)], axis=1)
    img = gan.generator(z, training=False)
    return [img], [gan.discriminator.logits(img), *gan.encoder(img)], gan.generator.h0(z)


# --- training in each model and each type ------------------------------------------------------------

# bfloat16 differs from float16 only in the policy and the absent loss scale, both model-independent: its
# vanilla and ClusterGAN cases repeat the CoGAN's (slow).
@pytest.mark.parametrize("model, dtype", [
    pytest.param(m, d, marks=[pytest.mark.slow] if (d == "bfloat16" and m != "cogan") else [], id=f"{d}-{m}")
    for d in POLICIES for m in MODELS])
def test_mixed_training_steps(tmp_path, model, dtype, weights):
    gan = built(tmp_path, model, POLICIES[dtype])
    assert keras.config.dtype_policy().name == "float32"  # restored after the build
    before = weights(gan)
    outs = run_steps(gan)
    for net in networks(gan):
        assert {v.dtype for v in net.trainable_variables} == {"float32"}
        assert {v.dtype for v in net.variables} <= {"float32", "int64"}  # + BN statistics, dropout seeds
        for layer in net._flatten_layers():
            assert layer.compute_dtype == dtype and layer.variable_dtype == "float32", layer.name
    for out in outs:
        for k, v in out.items():
            assert v.dtype == tf.float32 and np.isfinite(float(v)), (k, v)
    images, logits, hidden = outputs(gan, model)
    assert hidden.dtype == dtype  # the layers really compute in the low-precision type
    for t in images + logits:
        assert t.dtype == tf.float32
    for t in images:
        assert float(tf.reduce_min(t)) >= 0 and float(tf.reduce_max(t)) <= 1
    for name, opt in optimizers(gan).items():
        iterations = int(opt.iterations.numpy())
        if dtype == "float16":
            assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
            assert isinstance(opt.inner_optimizer, keras.optimizers.Adam)
            # The scale starts at 2^15 and halves at each skipped (overflowing) update, and every
            # attempt was either applied (counted in iterations) or skipped.
            skipped = math.log2(INITIAL_SCALE / float(opt.dynamic_scale.numpy()))
            assert skipped == int(skipped) >= 0, (name, skipped)
            assert iterations + int(skipped) in ATTEMPTS[model][name], (name, iterations, skipped)
        else:
            assert isinstance(opt, keras.optimizers.Adam)  # bfloat16: float32's range, no loss scaling
            assert iterations == min(ATTEMPTS[model][name]), name
    if dtype == "bfloat16":
        assert any(not np.array_equal(a, b) for a, b in zip(before, weights(gan)))


def test_float16_overflow_is_skipped_and_a_finite_step_applied(tmp_path):
    gan = built(tmp_path, "cogan", "mixed_float16")
    d_opt, g_opt = gan.d_opt, gan.g_opt
    trainable = lambda: [v.numpy() for v in gan.d_vars + gan.g_vars]  # noqa: E731
    before = trainable()
    for opt in (d_opt, g_opt):
        opt.dynamic_scale.assign(1e30)  # finite in float32; the float16 backward pass overflows
    x1, x2 = [tf.constant(a[:8]) for a in gan.training_arrays()]
    step = tf.function(gan.train_step)
    out = step(x1, x2)
    assert all(np.isfinite(float(v)) for v in out.values())
    assert int(d_opt.iterations.numpy()) == int(g_opt.iterations.numpy()) == 0  # skipped ...
    for a, b in zip(before, trainable()):
        np.testing.assert_array_equal(a, b)  # ... and no weight moved
    assert float(d_opt.dynamic_scale.numpy()) == pytest.approx(0.5e30)  # halved once per skip
    assert float(g_opt.dynamic_scale.numpy()) == pytest.approx(0.25e30)  # two G updates
    for opt in (d_opt, g_opt):
        opt.dynamic_scale.assign(1.0)  # no overflow possible: the step is applied
    step(x1, x2)
    assert int(d_opt.iterations.numpy()) == 1 and int(g_opt.iterations.numpy()) == 2
    assert float(d_opt.dynamic_scale.numpy()) == 1.0
    after = trainable()
    assert all(np.isfinite(a).all() for a in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


# --- the default: float32, unchanged, no leaked policy --------------------------------------------------

def test_default_is_float32_and_unchanged_by_a_mixed_build(tmp_path, weights):
    def float32_run(d):
        gan = built(d, "cogan", None)
        run_steps(gan)
        return gan

    a = float32_run(tmp_path / "a")
    run_steps(built(tmp_path / "m", "cogan", "mixed_float16"), steps=1)
    assert keras.config.dtype_policy().name == "float32"
    b = float32_run(tmp_path / "b")
    for gan in (a, b):
        for layer in gan.generator._flatten_layers():
            assert layer.compute_dtype == "float32"
        assert all(type(o) is TF1Adam for o in optimizers(gan).values())  # the default --adam, not loss-scaled
    for u, w in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(u, w)  # bit for bit: nothing of the mixed model leaked


# --- checkpoints and export -----------------------------------------------------------------------------

def test_mixed_cogan_checkpoint_records_precision_and_export_is_float32(tmp_path):
    x = arrays_for("cogan")
    cfg = lambda **kw: train_config(tmp_path, batch_size=8, **kw)  # noqa: E731
    logs = []
    gan = runner.run(C.CoganConfig(), cfg(max_steps=2, mixed_precision="mixed_float16"), arrays=x, log=logs.append)
    assert " [*] mixed precision: mixed_float16 (float32 variables, dynamic loss scaling)" in logs
    ck = tmp_path / "checkpoint" / "mnist_8_28"
    config_path = ck / "config.json"
    assert json.loads(config_path.read_text())["mixed_precision"] == "mixed_float16"
    # The loss scales are in the checkpoint.
    path = tf.train.latest_checkpoint(str(ck))
    for name in ("d_optimizer", "g_optimizer"):
        saved = tf.train.load_variable(path, f"{name}/dynamic_scale/.ATTRIBUTES/VARIABLE_VALUE")
        assert float(saved) == float(optimizers(gan)[name].dynamic_scale.numpy())
    # Resuming in another precision is refused in one line naming the flag.
    with pytest.raises(UsageError, match=r"trained in mixed_float16, not float32: resume it with --mixed_precision "
                                         r"--mixed_precision_dtype float16, or use a fresh --checkpoint_dir"):
        runner.run(C.CoganConfig(), cfg(max_steps=3), arrays=x, log=logs.append)
    with pytest.raises(UsageError, match="not mixed_bfloat16: resume it with --mixed_precision --mixed_precision_dtype float16"):
        runner.run(C.CoganConfig(), cfg(max_steps=3, mixed_precision="mixed_bfloat16"), arrays=x, log=logs.append)
    # The SavedModel: float32 in, float32 out, images in [0, 1], both signatures.
    m = tf.saved_model.load(str(tmp_path / "export" / "cogan"))
    z = tf.random.normal([16, 100])
    for sig in ("serving_default", "moving_average"):
        f = m.signatures[sig]
        assert f.structured_input_signature[1]["z"].dtype == tf.float32
        out = f(z=z)
        for k in ("top", "bot"):
            assert out[k].dtype == tf.float32 and out[k].shape == (16, 28, 28, 1)
            assert 0 <= float(tf.reduce_min(out[k])) and float(tf.reduce_max(out[k])) <= 1
    np.testing.assert_allclose(m.signatures["serving_default"](z=z)["top"].numpy(),
                               gan.generator(z, training=False)[0].numpy(), atol=1e-6)


@pytest.mark.parametrize("model", ["vanilla", "clustergan"])
def test_mixed_exports_keep_float32_signatures(tmp_path, model):
    gan = built(tmp_path, model, "mixed_float16")
    m = tf.saved_model.load(gan.export(str(tmp_path / "export")))
    for name, f in m.signatures.items():
        inputs = f.structured_input_signature[1]
        assert inputs and all(spec.dtype == tf.float32 for spec in inputs.values()), name
        args = {k: tf.zeros([3] + spec.shape.as_list()[1:]) for k, spec in inputs.items()}
        assert all(v.dtype == tf.float32 for v in f(**args).values()), name


@pytest.mark.slow
def test_mixed_resume_continues_exactly_and_evaluates_in_float32(tmp_path, weights):
    x = arrays_for("cogan", n=48)
    cfg = lambda d, **kw: train_config(tmp_path / d, batch_size=8, **kw)  # noqa: E731
    quiet = lambda s: None  # noqa: E731
    full = runner.run(C.CoganConfig(), cfg("a", max_steps=5, mixed_precision="mixed_float16"), arrays=x, log=quiet)
    runner.run(C.CoganConfig(), cfg("b", max_steps=2, mixed_precision="mixed_float16"), arrays=x, log=quiet)
    resumed = runner.run(C.CoganConfig(), cfg("b", max_steps=5, mixed_precision="mixed_float16"), arrays=x, log=quiet)
    for name, opt in optimizers(full).items():
        other = optimizers(resumed)[name]
        assert float(opt.dynamic_scale.numpy()) == float(other.dynamic_scale.numpy())
        assert int(opt.iterations.numpy()) == int(other.iterations.numpy())
    for u, w in zip(weights(full), weights(resumed)):
        np.testing.assert_allclose(u, w, atol=1e-5)
    # --is_train False without the flag: the float32 weights of the mixed run, computed in float32.
    ev = runner.run(C.CoganConfig(), cfg("b"), is_train=False, arrays=x, log=quiet)
    assert ev.generator.h1.compute_dtype == "float32"
    for u, w in zip(weights(resumed), weights(ev)):
        np.testing.assert_array_equal(u, w)


# --- tf.distribute ----------------------------------------------------------------------------------------


MIRRORED_COGAN = r"""
import json, sys, tempfile, pathlib
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from cogan_tf import config as C, runner
from tests.conftest import train_config

x = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {}
for policy in ("mixed_float16", "mixed_bfloat16"):
    cfg = train_config(pathlib.Path(tempfile.mkdtemp()), batch_size=16, max_steps=2, mixed_precision=policy)
    gan = runner.run(C.CoganConfig(sync_batchnorm=True), cfg, arrays=[x, 255 - x], strategy=strategy,
                     log=lambda s: None)
    variables = gan.generator.trainable_variables + gan.discriminator.trainable_variables
    local = [[t.numpy() for t in strategy.experimental_local_results(v.value)] for v in variables]
    out[policy] = {"replica_diff": max(float(np.max(np.abs(a - b))) for a, b in local),
                   "finite": all(np.isfinite(a).all() for a, _ in local),
                   "dtypes": sorted({v.dtype for v in variables}),
                   "compute": gan.generator.h1.compute_dtype,
                   "optimizer": type(gan.g_opt).__name__}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_mirrored_mixed_cogan_trains():
    r = subprocess.run([sys.executable, "-c", MIRRORED_COGAN, ROOT], capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for policy, dtype, opt in (("mixed_float16", "float16", "LossScaleOptimizer"), ("mixed_bfloat16", "bfloat16", "Adam")):
        assert out[policy] == {"replica_diff": 0.0, "finite": True, "dtypes": ["float32"], "compute": dtype,
                               "optimizer": opt}, out


# --- main.py ----------------------------------------------------------------------------------------------

FLAGS_TO_CONFIG = r"""
from cogan_tf.scripts import main
main.define_flags()
from cogan_tf import cli
for argv in ([], ["--mixed_precision"], ["--mixed_precision", "True"], ["--mixed_precision", "False"],
             ["--mixed_precision", "--mixed_precision_dtype", "bfloat16"], ["--mixed_precision=true", "--mixed_precision_dtype=float16"]):
    main.FLAGS.unparse_flags()
    main.FLAGS(cli.fold_bool_args(["main.py"] + argv, main.FLAGS))
    main.validate(main.FLAGS)
    print(main.build_configs(main.FLAGS)[1].mixed_precision)
"""


def test_main_flags_to_config():
    r = subprocess.run([sys.executable, "-c", FLAGS_TO_CONFIG], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["None", "mixed_float16", "mixed_float16", "None", "mixed_bfloat16", "mixed_float16"]
    assert "tensorflow" not in r.stderr.lower()


def test_fused_batchnorm_without_float32_casts_equals_the_cast_one(tmp_path):
    """The GPU levers (cogan_tf/levers.py): under mixed precision the fused BatchNorm takes its bfloat16 /
    float16 input as it is (float32 statistics inside the op) instead of a float32 copy. The statistics are
    the same (the cast is exact) and the output is rounded to the compute type once either way: the first
    step's losses agree to a few bfloat16 roundings."""
    cpu, gpu = (built(tmp_path / k, "cogan", POLICIES["bfloat16"]) for k in ("cpu", "gpu"))
    gpu.use_device_levers("gpu")
    for gan in (cpu, gpu):
        gan.subpixel_heads = True  # the heads alike: this test is about the BatchNorm
    x = [tf.constant(a[:8]) for a in cpu.training_arrays()]

    def fused_input_types(gan):
        graph = tf.function(gan.train_step).get_concrete_function(*x).graph.as_graph_def()
        nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
        return {tf.dtypes.as_dtype(n.attr["T"].type).name for n in nodes if n.op == "FusedBatchNormV3"}

    # (Q2's scalar statistics are not fused on either device: reductions with a written gradient.)
    assert fused_input_types(cpu) == {"float32"} and fused_input_types(gpu) == {"bfloat16"}
    a, b = ({k: float(v) for k, v in run_steps(gan, 1)[0].items()} for gan in (cpu, gpu))
    eps = 2.0 ** -8  # bfloat16's
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=8 * eps), k
