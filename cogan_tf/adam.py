"""Adam's two arithmetics (``--adam``, docs/PERFORMANCE.md "Adam").

* ``tf1``: TensorFlow's ApplyAdam kernel, which TF1's ``tf.train.AdamOptimizer`` ran (the original CoGAN's, and
  the ClusterGAN paper authors'): one fused op per variable (ResourceApplyAdam) that computes 1 - beta1 and
  1 - beta2 from float32 betas. 0.999 is not a float32 number, so its 1 - beta2 is 0.99999e-3 (relative
  -1.29e-5 from 1e-3): the increment of v differs from Keras's by that fixed factor.
* ``keras``: Keras's Adam, eight elementwise ops per variable, 1 - beta taken in double precision and then
  rounded to float32.

Both add epsilon to sqrt(v) after the bias correction of the step size (TF's "epsilon hat" form), with the
bias corrections' powers computed from the step count (TF1 kept them as variables multiplied by beta after
every update: equal to float32 rounding). They keep the same slots, so a checkpoint of one restores into the other.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def _resource(variable):
    """The resource handle of a Keras variable (of the per-device copy being updated under tf.distribute)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


class TF1Adam(keras.optimizers.Adam):
    """Keras's Adam (its slots, schedule and options) whose update of each variable is TensorFlow's fused
    ResourceApplyAdam: TF1's ApplyAdam arithmetic."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        t = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        i = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_resource(variable), m=_resource(self._momentums[i]), v=_resource(self._velocities[i]),
            beta1_power=ops.power(beta_1, t), beta2_power=ops.power(beta_2, t), lr=ops.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=ops.cast(self.epsilon, dtype), grad=ops.cast(gradient, dtype))


def make_adam(arithmetic: str, **kwargs) -> keras.optimizers.Adam:
    """Adam with ``arithmetic`` "tf1" (:class:`TF1Adam`) or "keras" (Keras's own); ``kwargs`` are Keras's."""
    if arithmetic == "tf1":
        return TF1Adam(**kwargs)
    if arithmetic == "keras":
        return keras.optimizers.Adam(**kwargs)
    raise ValueError(f"Adam arithmetic {arithmetic!r}: choose tf1 or keras")
