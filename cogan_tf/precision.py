"""Mixed precision (``--mixed_precision``, for GPUs; off by default): layers compute in float16 or
bfloat16 while their variables, BatchNorm statistics, losses and the networks' outputs (images,
logits) stay float32, as Keras's mixed precision guide recommends.

- The Keras dtype policy (``mixed_float16`` / ``mixed_bfloat16``) is global and read when a layer is
  constructed, so a GAN is built inside :func:`policy_scope`, which restores the previous global
  policy afterwards (tests and benchmarks build many models in one process).
- float16 (narrow exponent) needs loss scaling: each optimizer is a ``LossScaleOptimizer`` with a
  dynamic scale, the gradient is taken of ``scale * loss`` (:func:`gradients`), and the optimizer
  unscales it, skipping the update and halving the scale when a gradient is not finite. bfloat16
  has float32's exponent range and needs none.
- Without the flag (``None``) nothing of this runs: the policy is float32 and the graph is the
  float32 one op for op (:func:`as_float32` returns a float32 tensor itself, no cast added).
"""

from __future__ import annotations

import contextlib
from typing import Optional

import keras
import tensorflow as tf

from cogan_tf.errors import UsageError
from cogan_tf.config import MIXED_PRECISION_POLICIES


def policy_name(mixed_precision: Optional[str]) -> str:
    """The Keras dtype policy of a TrainConfig.mixed_precision value (None: float32)."""
    if mixed_precision is None:
        return "float32"
    if mixed_precision not in MIXED_PRECISION_POLICIES:
        raise UsageError(f"--mixed_precision: unknown policy {mixed_precision!r}; "
                         f"choose one of {', '.join(MIXED_PRECISION_POLICIES)}")
    return mixed_precision


@contextlib.contextmanager
def policy_scope(mixed_precision: Optional[str]):
    """Layers constructed inside get the policy of ``mixed_precision``; the previous global policy
    is put back on the way out, also after an error."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name(mixed_precision))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def loss_scaled(optimizer) -> bool:
    return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def loss_scale(optimizer):
    """The dynamic loss scale of a LossScaleOptimizer (a float32 variable), None for any other optimizer."""
    return optimizer.dynamic_scale if loss_scaled(optimizer) else None


def wrap_optimizer(optimizer):
    """``optimizer`` behind dynamic loss scaling when layers are being built in float16 (the global
    policy is ``mixed_float16``), else ``optimizer`` itself."""
    if keras.config.dtype_policy().name == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def gradients(optimizer, tape: tf.GradientTape, loss, variables):
    """``tape.gradient(loss, variables)``; for a LossScaleOptimizer the gradient of ``scale * loss``
    (to be unscaled by its ``apply_gradients``). The tape has stopped recording by then, so the
    scale enters as the output gradient: d(scale * loss)/dv = scale * dloss/dv, the same seed the
    scaled loss would give."""
    if loss_scaled(optimizer):
        return tape.gradient(loss, variables, output_gradients=optimizer.scale_loss(tf.ones_like(loss)))
    return tape.gradient(loss, variables)


def agree_on_finite(grads):
    """Under tf.distribute: make every replica's gradients non-finite if any replica's are.

    Keras's LossScaleOptimizer decides between applying and skipping on the FIRST replica's own
    gradients (before they are summed), so with MirroredStrategy an overflow on another replica
    would be applied and turn the weights into inf/nan (seen with Keras 3.15). One scalar all-reduce
    makes the decision global: a replica whose gradients are all finite gets a NaN in its first
    gradient when some other replica's are not, and every replica then skips the update."""
    present = [g for g in grads if g is not None]
    if not present:
        return grads
    local_bad = tf.cast(tf.logical_not(tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in present])),
                        tf.float32)
    bad = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local_bad)
    first = next(i for i, g in enumerate(grads) if g is not None)
    g = grads[first]
    out = list(grads)
    out[first] = tf.where(bad > 0, tf.fill(tf.shape(g), tf.constant(float("nan"), g.dtype)), g)
    return out


def as_float32(x):
    """``x`` as float32: the networks' outputs under a mixed policy. A float32 tensor is returned as
    it is (no op added), so the float32 graph is unchanged."""
    if keras.backend.standardize_dtype(x.dtype) == "float32":
        return x
    return keras.ops.cast(x, "float32")
