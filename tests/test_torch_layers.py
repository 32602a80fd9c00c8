"""cogan_tf/torch_layers.py: PyTorch's default initial weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for
weights and biases alike. (The networks that use them: tests/test_vanilla.py, tests/test_clustergan.py.)"""

import math

import keras
import numpy as np
import pytest

from cogan_tf.torch_layers import build_once, torch_default_init, torch_dense


@pytest.mark.parametrize("fan_in", [4, 784, 1024])
def test_the_bound_is_one_over_the_root_of_fan_in(fan_in):
    keras.utils.set_random_seed(0)
    w = keras.ops.convert_to_numpy(torch_default_init(fan_in)((200, 300)))
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)  # the std of U(-b, b)


def test_a_torch_dense_is_nn_linear_and_is_built_once():
    keras.utils.set_random_seed(0)
    layer = torch_dense(3, 50, "h")
    build_once(layer, (None, 50))
    kernel = layer.kernel
    build_once(layer, (None, 50))  # built already: the same variables
    assert layer.kernel is kernel and kernel.shape == (50, 3) and layer.name == "h"
    for v in (layer.kernel, layer.bias):
        assert np.abs(v.numpy()).max() <= 1 / math.sqrt(50) and np.abs(v.numpy()).std() > 0
