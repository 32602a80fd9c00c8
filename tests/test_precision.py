"""cogan_tf/precision.py: the dtype policy of a run's --mixed_precision (an unknown one refused) set for a build and
the previous one put back, also after an error; the gradient of the scaled loss handed to a LossScaleOptimizer, which
takes the scale out again; and under tf.distribute an overflow on any replica skipping the update on all.
(Mixed precision in each model's training, checkpoints and exports: tests/test_mixed_precision.py.)"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import keras

from cogan_tf import gan as gan_lib, precision
from cogan_tf.errors import UsageError
from tests.conftest import ROOT, built


def test_loss_scale_reaches_the_gradient_and_is_taken_out(tmp_path):
    # The gradient handed to the LossScaleOptimizer is scale * dloss/dv, and the applied update is that
    # of the unscaled gradient: with SGD, w - lr * g whatever the scale.
    v = tf.Variable([1.0, -2.0])
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(learning_rate=0.5), initial_scale=64.0)
    opt.build([v])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(3.0 * v)
    np.testing.assert_array_equal(precision.gradients(opt, tape, loss, [v])[0].numpy(), [192.0, 192.0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(3.0 * v)
    gan_lib.apply_gradients(opt, tape, loss, [v])
    np.testing.assert_allclose(v.numpy(), [1.0 - 1.5, -2.0 - 1.5])


def test_policy_scope_restores_any_previous_policy(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        gan = built(tmp_path, "vanilla", None)  # the run's precision wins over a global policy
        assert gan.generator.h0.compute_dtype == "float32"
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        with pytest.raises(ZeroDivisionError):
            with precision.policy_scope("mixed_float16"):
                1 / 0
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    with pytest.raises(UsageError, match="--mixed_precision: unknown policy 'float16'"):
        precision.policy_name("float16")


DISTRIBUTED = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
import keras
from cogan_tf import gan as gan_lib

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    v = keras.Variable(np.ones(3, np.float32))
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(learning_rate=0.1))
    opt.build([v])

@tf.function
def step(bad_replica):
    def replica():
        rid = tf.distribute.get_replica_context().replica_id_in_sync_group
        weight = tf.where(tf.equal(rid, bad_replica), tf.constant([np.inf, 1.0, 1.0]), tf.ones(3))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(v * weight)
        gan_lib.apply_gradients(opt, tape, loss, [v])
    strategy.run(replica)

out = {}
for bad in (1, 0, -1):  # replica 1 overflows, replica 0 overflows, none does
    step(tf.constant(bad))
    out[bad] = {"v": [t.numpy().tolist() for t in strategy.experimental_local_results(v.value)],
                "scale": float(opt.dynamic_scale.numpy()), "iterations": int(opt.iterations.numpy())}
print(json.dumps(out))
"""


def test_mirrored_replicas_skip_together():
    # Keras's LossScaleOptimizer decides on the first replica's gradients alone; gan.apply_gradients
    # makes an overflow on any replica skip the update on all (without it, replica 1's inf is applied).
    r = subprocess.run([sys.executable, "-c", DISTRIBUTED, ROOT], capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["1"] == {"v": [[1.0] * 3] * 2, "scale": 2.0 ** 14, "iterations": 0}
    assert out["0"] == {"v": [[1.0] * 3] * 2, "scale": 2.0 ** 13, "iterations": 0}
    # No overflow: applied on both replicas, the gradient of the global mean (1 per replica, halved, summed).
    assert out["-1"]["iterations"] == 1 and out["-1"]["scale"] == 2.0 ** 13
    np.testing.assert_allclose(out["-1"]["v"], [[0.9] * 3] * 2, rtol=1e-6)
