"""How far two float32 computations of the same mathematics may differ when they differ only in the
order of their roundings: another kernel, another instruction set (AVX-512 or AVX2: another blocking
of the same sums), another summation order.

The rule, from the arithmetic rather than from one machine: float32 rounds each partial sum to a
relative EPS / 2 (EPS = 2^-23 = 1.19e-7, one ulp at 1.0). A sum of n terms thus carries an error of
at most about n * EPS times the size of its partial sums, and typically, the roundings being
independent, about sqrt(n) * EPS times that size (a random walk; Higham, "Accuracy and Stability of
Numerical Algorithms", 2nd ed., section 4.2). Two orders of the same sum differ by about as much.
A value computed through ``depth`` such sums (the layers of a network, forward or backward) adds
their relative errors. ``K`` = 4 standard deviations of the random walk covers the largest of the
thousands of elements a test compares; the partial sums are bounded by the sum of the terms'
absolute values, which the tests pass as ``scale`` where they can compute it.
"""

import math

import numpy as np

EPS = float(np.finfo(np.float32).eps)
K = 4.0


def sum_rounding(n: int, scale: float = 1.0, depth: int = 1) -> float:
    """The difference to expect between two float32 evaluations of ``depth`` chained sums of ``n``
    terms whose partial sums are at most ``scale``: K * EPS * sqrt(n) * depth * scale."""
    return K * EPS * math.sqrt(n) * depth * scale


# The CoGAN of the tests (batch 16): its longest sums are the generator's 5x5 deconvolutions over 128
# channels (25 * 128 = 3,200 terms per output; the filter gradients and BatchNorm statistics of the
# 14x14 layers sum 16 * 14 * 14 = 3,136), and a value passes at most four layers (G: h1, h2, h3; D:
# h0..h3) forward, as many backward. So a loss, an output or a gradient of the network, relative to the
# network's largest: 4 * 1.19e-7 * sqrt(3200) * 4 = 1.1e-4.
COGAN_SUM_TERMS = 25 * 128
COGAN_DEPTH = 4
COGAN_RTOL = sum_rounding(COGAN_SUM_TERMS, 1.0, COGAN_DEPTH)


def assert_gradients_close(variables, g1, g2, rtol=COGAN_RTOL, skip=()):
    """Two computations' gradients of the same network, element by element: within ``rtol`` of the
    element and ``rtol`` of the network's largest gradient element (an element's rounding comes
    from the terms of the sums it is made of, which the largest gradient bounds, not from its own
    size: a small element can be the difference of large terms). Variables whose path ends with one
    of ``skip`` are left to the caller. Returns how many variables were compared."""
    scale = max(float(np.max(np.abs(a))) for a in g1 if a is not None)
    checked = 0
    for v, a, b in zip(variables, g1, g2):
        if a is None or b is None:
            assert a is None and b is None, v.path  # both or neither (the faithful network's dead h0)
            continue
        if v.path.endswith(tuple(skip)):
            continue
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol * scale, err_msg=v.path)
        checked += 1
    return checked


def assert_cancelled_gradient(grad, deltas):
    """The gradient of a bias in front of a BatchNorm with per-channel statistics, which subtracts it
    out again: exactly zero, computed as the sum over the n batch positions of delta, the gradient at
    the BatchNorm's input (``deltas``: one (batch, ..., channels) array per call of the layer), whose
    exact sum is zero. Its float32 value is rounding alone: per channel at most
    ``sum_rounding(n, sum |delta|)``, from the size of the terms actually summed (a fixed fraction of
    the network's largest gradient, which is another quantity, held on one machine and not on another).
    A bias with a real gradient exceeds it by orders of magnitude (tested)."""
    deltas = [np.asarray(d, np.float64) for d in deltas]
    n = sum(int(np.prod(d.shape[:-1])) for d in deltas)
    mass = sum(np.abs(d).reshape(-1, d.shape[-1]).sum(0) for d in deltas)
    bound = sum_rounding(n, 1.0) * mass
    grad = np.abs(np.asarray(grad))
    assert np.all(grad <= bound), f"|gradient| {grad.max():.3e} over its rounding bound {bound[grad.argmax()]:.3e}"


def rel_max(a, b) -> float:
    """The largest difference between ``a`` and ``b``, relative to the largest magnitude of ``b``."""
    import tensorflow as tf

    return float(tf.reduce_max(tf.abs(a - b)) / (tf.reduce_max(tf.abs(b)) + 1e-30))


def call_and_differentiate(functions, args, w):
    """Two versions of one function (a speed lever and the reference it is tested against), each called on
    ``args``: ``[(y, *gradients), ...]``, the gradients of ``sum(y * w)`` (a loss that weighs every output
    differently) with respect to every argument."""
    import tensorflow as tf

    out = []
    for f in functions:
        with tf.GradientTape() as tape:
            tape.watch(args)
            y = f(*args)
            loss = tf.reduce_sum(y * w)
        out.append((y, *tape.gradient(loss, list(args))))
    return out


def outputs_and_gradients(layers, x, w, training: bool, params):
    """Two versions of one layer (a speed lever and its plain ops), called on ``x``: each one's output and
    the gradients of ``sum(y * w)`` (a loss that weighs every output differently) with respect to ``x``
    and ``params(layer)``."""
    import tensorflow as tf

    outs, grads = [], []
    for layer in layers:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * w)
        outs.append(y)
        grads.append(tape.gradient(loss, [x, *params(layer)]))
    return outs, grads
