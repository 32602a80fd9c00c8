"""--strategy: two training steps under MirroredStrategy on two logical CPU devices.

Logical devices must be configured before TensorFlow initialises, so each case runs in a fresh process.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

SCRIPT = r"""
import json, sys, tempfile
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
import keras
from cogan_tf import config as C, gan as gan_lib, runner, train

# Plain SGD for this comparison: Adam divides by sqrt(v), which turns float noise in near-zero gradients
# into full +-lr steps; with SGD a weight difference is a gradient difference. Adam is an elementwise
# function of the same gradients, so equal gradients mean equal Adam updates up to rounding.
gan_lib.GAN.make_optimizer = lambda self, lr, b1, b2, **kw: keras.optimizers.SGD(learning_rate=0.01)

x = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
arrays = [x, 255 - x]

def cfg(d):
    return C.TrainConfig(epoch=1, batch_size=16, seed=5, log_every=0, sample_every=0, save_every=0, max_steps=2,
                         checkpoint_dir=d + "/ck", sample_dir=d + "/s", log_dir=d + "/l", export_dir=d + "/e",
                         evaluate_dir=d + "/v")

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

def variables(gan):
    return gan.generator.trainable_variables + gan.discriminator.trainable_variables

z = tf.random.stateless_normal([64, 100], seed=[1, 2])
results = {}
for mode in sys.argv[2].split(","):
    mc = C.CoganConfig(sync_batchnorm=mode == "sync")
    dist = runner.run(mc, cfg(tempfile.mkdtemp()), arrays=arrays, strategy=strategy, log=lambda s: None)
    single = runner.run(mc, cfg(tempfile.mkdtemp()), arrays=arrays, log=lambda s: None)
    # The same initial weights (same seed), untrained: how far training moved them.
    fresh = runner.make_gan(mc, cfg(tempfile.mkdtemp()), arrays=arrays)
    keras.utils.set_random_seed(fresh.seed)
    fresh.build()
    replica_diff = 0.0
    for v in variables(dist):
        locals_ = [t.numpy() for t in strategy.experimental_local_results(v.value)]
        assert len(locals_) == 2
        replica_diff = max(replica_diff, float(np.max(np.abs(locals_[0] - locals_[1]))))
    single_diff = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(variables(dist), variables(single)))
    moved = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(variables(single), variables(fresh)))
    out_diff = float(np.max(np.abs(dist.generator(z)[0].numpy() - single.generator(z)[0].numpy())))
    results[mode] = {"replicas": strategy.num_replicas_in_sync, "replica_diff": replica_diff,
                     "single_diff": single_diff, "moved": moved, "out_diff": out_diff,
                     "d_iters": int(dist.d_opt.iterations.numpy()), "g_iters": int(dist.g_opt.iterations.numpy())}
print(json.dumps(results))
"""


def run_modes(modes):
    r = subprocess.run([sys.executable, "-c", SCRIPT, ROOT, ",".join(modes)], capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results():
    return run_modes(["sync"])


def test_mirrored_sync_batchnorm_matches_one_device(results):
    out = results["sync"]
    assert out["replicas"] == 2 and out["d_iters"] == 2 and out["g_iters"] == 4
    assert out["replica_diff"] == 0.0  # the replicas hold identical weights
    # Synchronised BatchNorm: the distributed step computes what one device computes on the global batch.
    assert out["moved"] > 1e-2, out  # training really changed the weights
    # Within float tolerance of one device. Not bit-exact: synchronised BatchNorm computes the variance
    # as E[x^2] - E[x]^2 (one all-reduce) where one device subtracts the mean first, and D's h1
    # features have a mean far larger than their spread, so the two differ in the last bits and
    # BatchNorm's 1/std amplifies that (measured: 5e-6 after one step, 2e-4 after two, against 1e-1
    # for per-replica statistics).
    assert out["single_diff"] < 0.05 * out["moved"], out
    assert out["out_diff"] < 5e-3, out


@pytest.mark.slow  # another subprocess of two mirrored and two one-device runs (~13 s); a documented property
def test_mirrored_per_replica_batchnorm_differs_from_one_device():
    results = run_modes(["sync", "local"])
    out = results["local"]
    assert out["replica_diff"] == 0.0
    # Per-replica statistics (the Keras default) normalise each half-batch on its own: another function.
    # (With the original's scalar statistics on the dense layers (Q2), a half-batch's statistics over
    # 1024 or 6272 features are close to the whole batch's, so the gap is smaller than with per-feature ones.)
    assert out["single_diff"] > 0.1 * out["moved"], out
    assert out["single_diff"] > 20 * results["sync"]["single_diff"], (out, results["sync"])


XLA_SCRIPT = r"""
import json, sys, tempfile
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from cogan_tf import config as C, runner
from cogan_tf.errors import UsageError

x = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)

def cfg(jit):
    d = tempfile.mkdtemp()
    return C.TrainConfig(model="vanilla", epoch=1, batch_size=16, seed=5, log_every=1, sample_every=0, save_every=0, max_steps=1,
                         jit_compile=jit, strategy="mirrored", checkpoint_dir=d + "/ck", sample_dir=d + "/s",
                         log_dir=d + "/l", export_dir=d + "/e", evaluate_dir=d + "/v")

out = {}
try:  # two replicas on CPUs
    runner.run(C.VanillaConfig(), cfg(True), arrays=[x], strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
               log=lambda s: None)
    out["two"] = "trained"
except UsageError as e:
    out["two"] = str(e)
# One replica under MirroredStrategy: XLA compiles the replica's function, not the step around it.
one = tf.distribute.MirroredStrategy(["/cpu:0"])
for jit in (True, False):
    lines = []
    # Without dropout: XLA draws its random numbers its own way.
    gan = runner.run(C.VanillaConfig(dropout=0.0), cfg(jit), arrays=[x], strategy=one, log=lines.append)
    graph = gan.compiled_step().get_concrete_function(next(iter(gan.strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(16))))).graph
    must = [op.type for op in graph.get_operations() if op.node_def.attr["_XlaMustCompile"].b]
    out[str(jit)] = {"xla_calls": must, "line": [l for l in lines if l.startswith("Epoch:")][0]}
print(json.dumps(out))
"""


def test_jit_compile_with_mirrored_compiles_each_replica_or_refuses_on_cpus():
    r = subprocess.run([sys.executable, "-c", XLA_SCRIPT, ROOT], capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # Two CPU replicas: one line before training (TensorFlow would fail inside the compiled step).
    assert out["two"] == ("--jit_compile with --strategy mirrored: TensorFlow compiles a step across 2 replicas with "
                          "XLA only when all are GPUs (here CPU:0, CPU:1); drop --jit_compile, or train on GPUs")
    # One replica: the replica's function is an XLA call inside the step; without --jit_compile nothing is.
    assert out["True"]["xla_calls"] and not out["False"]["xla_calls"], out
    # Both train the same step: the losses of step 1 agree to float rounding (XLA orders its sums its own way).
    losses = [[float(v) for v in re.findall(r"_loss: ([0-9.]+)", out[k]["line"])] for k in ("True", "False")]
    assert len(losses[0]) == 2 and np.allclose(losses[0], losses[1], rtol=1e-4), out


PORTS_SCRIPT = r"""
import json, sys, tempfile
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
import keras
from cogan_tf import config as C, gan as gan_lib, runner
from cogan_tf.clustergan import ClusterGAN
from cogan_tf.vanilla import ReplicaDropout

gan_lib.GAN.make_optimizer = lambda self, lr, b1, b2, **kw: keras.optimizers.SGD(learning_rate=0.01)
SYNC = {"on": False}
build = ClusterGAN.build

def synced_build(self):  # BatchNorm over the global batch, so that two replicas compute what one device does
    build(self)
    for m in (self.generator, self.discriminator, self.encoder):
        for layer in m._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = SYNC["on"]

ClusterGAN.build = synced_build
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x = [np.random.default_rng(0).integers(0, 256, (96, 28, 28, 1), dtype=np.uint8)]

def cfg(model, d, steps):
    return C.TrainConfig(model=model, epoch=1, batch_size=16, seed=5, log_every=0, sample_every=0, save_every=0,
                         max_steps=steps, sample_every_epochs=0, checkpoint_dir=d + "/ck", sample_dir=d + "/s",
                         log_dir=d + "/l", export_dir=d + "/e", evaluate_dir=d + "/v")

def nets(gan):
    return [m for m in gan.trackables().values() if isinstance(m, keras.Model)]

def weights(gan, trainable):
    return [v for m in nets(gan) for v in (m.trainable_variables if trainable else m.non_trainable_variables)
            if "float" in str(v.dtype)]

def replica_diff(gan):
    diff = 0.0
    for v in weights(gan, True) + weights(gan, False) + list(getattr(gan, "last_ge", {}).values()):
        a, b = [t.numpy() for t in strategy.experimental_local_results(v.value if isinstance(v, keras.Variable) else v)]
        diff = max(diff, float(np.max(np.abs(a - b))))
    return diff

def maxdiff(xs, ys):
    return max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(xs, ys))

results = {}
cases = {"vanilla": ("vanilla", C.VanillaConfig(dropout=0.0), False, 2),
         "vanilla_dropout": ("vanilla", C.VanillaConfig(), False, 2),
         "clustergan": ("clustergan", C.ClusterGanConfig(), True, 2),
         "clustergan_local_bn": ("clustergan", C.ClusterGanConfig(), False, 2),
         "clustergan_paper": ("clustergan", C.clustergan_config("paper"), True, 5)}
for name in sys.argv[2].split(","):
    model, mc, sync, steps = cases[name]
    SYNC["on"] = sync
    dist = runner.run(mc, cfg(model, tempfile.mkdtemp(), steps), arrays=x, strategy=strategy, log=lambda s: None)
    one = runner.run(mc, cfg(model, tempfile.mkdtemp(), steps), arrays=x, log=lambda s: None)
    fresh = runner.make_gan(mc, cfg(model, tempfile.mkdtemp(), steps), arrays=x)
    keras.utils.set_random_seed(fresh.seed)
    gan_lib.build_gan(fresh)
    opts = {k: int(v.iterations.numpy()) for k, v in dist.trackables().items() if hasattr(v, "iterations")}
    results[name] = {"replica_diff": replica_diff(dist), "opts": opts,
                     "single_diff": maxdiff(weights(dist, True), weights(one, True)),
                     "moved": maxdiff(weights(one, True), weights(fresh, True))}

# BatchNorm moving averages of replicas that normalise their own shares: each replica's copy is set to the
# mean of the replicas' updates.
with strategy.scope():
    bn = keras.layers.BatchNormalization(momentum=0.5)
    bn.build((None, 3))
shares = [np.arange(12, dtype=np.float32).reshape(4, 3) * (1 + 3 * r) for r in range(2)]
xs = strategy.experimental_distribute_values_from_function(lambda ctx: tf.constant(shares[ctx.replica_id_in_sync_group]))
holder = type("H", (gan_lib.GAN,), {"trackables": lambda self: {"net": keras.Sequential([bn])}})(
    C.VanillaConfig(), C.TrainConfig(seed=0), strategy=strategy)
tf.function(lambda v: holder.run_replicas(lambda t: {"y": tf.reduce_mean(bn(t, training=True))}, v))(xs)
local = [t.numpy().tolist() for t in strategy.experimental_local_results(bn.moving_mean.value)]
expected = np.mean([0.5 * 0.0 + 0.5 * s.mean(axis=0) for s in shares], axis=0).tolist()
results["moving_mean"] = {"local": local, "expected": expected}
print(json.dumps(results))
"""


def run_ports(cases):
    r = subprocess.run([sys.executable, "-c", PORTS_SCRIPT, ROOT, ",".join(cases)], capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ports():
    return run_ports(["vanilla", "clustergan"])


def check_port(out, case):
    assert out["replica_diff"] == 0.0, out  # every weight, moving average and held loss the same on both replicas
    assert out["moved"] > 1e-4, out  # the steps trained (plain SGD, a few steps)
    if case == "clustergan_paper":  # 5 critic updates, then the G+E update on its own z
        assert out["opts"] == {"ge_optimizer": 1, "d_optimizer": 5}, out
    elif case.startswith("clustergan"):
        assert out["opts"] == {"ge_optimizer": 1, "d_optimizer": 2}, out
    else:
        assert out["opts"] == {"g_optimizer": 2, "d_optimizer": 2}, out
    if case in ("vanilla", "clustergan", "clustergan_paper"):
        # No dropout, or BatchNorm over the global batch: two replicas compute the one-device step on the same
        # z (each replica its share of the global batch's draw), to float rounding.
        assert out["single_diff"] < 1e-4 * out["moved"], out
    else:
        # Each replica's own dropout masks, or BatchNorm statistics of its own share: another computation.
        assert out["single_diff"] > 1e-2 * out["moved"], out


@pytest.mark.parametrize("case", ["vanilla", "clustergan"])
def test_vanilla_and_clustergan_train_under_mirrored(ports, case):
    check_port(ports[case], case)


@pytest.mark.slow  # another subprocess (~2 min): dropout, per-replica BatchNorm and the paper recipe under mirrored
def test_more_ports_under_mirrored():
    out = run_ports(["vanilla_dropout", "clustergan_local_bn", "clustergan_paper"])
    for case in ("vanilla_dropout", "clustergan_local_bn", "clustergan_paper"):
        check_port(out[case], case)


def test_batchnorm_moving_averages_are_the_replicas_mean(ports):
    out = ports["moving_mean"]
    assert out["local"][0] == out["local"][1]
    np.testing.assert_allclose(out["local"][0], out["expected"], rtol=1e-6)
