"""The training steps' speed levers, and the device each pays on.

Every lever computes what the plain step computes, to float rounding; the tests run the step with the
levers of each device against the plain step (tests/test_cogan_fast.py, test_layers.py, test_xla_fusions.py,
tests/test_clustergan_networks.py; which device each is on: tests/test_levers.py), and
docs/PERFORMANCE.md has what each buys on the CPU it was measured on. Some pay on any device (they
compute less); others trade more arithmetic, or another op, for a faster CPU kernel (oneDNN), and on a GPU
the plain op is cuDNN's or cuBLAS's own. The latter follow the device a run trains on
(:func:`cogan_tf.device.kind`): :func:`cogan_tf.gan.build_gan` has the GAN set them (``use_device_levers``).
"""

from __future__ import annotations

import dataclasses
from typing import Tuple


@dataclasses.dataclass(frozen=True)
class Lever:
    name: str
    model: str
    device: str  # "both", or the one device it is on for ("cpu")
    what: str


LEVERS: Tuple[Lever, ...] = (
    Lever("trunk_once", "cogan", "both", "G1 and G2 share their trunk and z: it runs once for both domains"),
    Lever("reuse_g_forward", "cogan", "both", "the first G update reuses the D update's G forward pass"),
    Lever("two_channel_heads", "cogan", "both", "both output heads as one transposed convolution with two channels"),
    Lever("subpixel_heads", "cogan", "cpu", "that transposed convolution as a 3x3 convolution + depth_to_space: 36 "
          "taps per output instead of 25, but oneDNN's transposed convolutions are slow; a GPU runs cuDNN's"),
    Lever("fused_batchnorm", "cogan", "both", "BatchNorm on batch statistics as one FusedBatchNormV3 (oneDNN, cuDNN)"),
    Lever("written_scalar_batchnorm", "cogan", "both", "quirk Q2's scalar statistics by plain reductions with a "
          "written gradient: fewer full-size passes than autodiff of the moments"),
    Lever("batchnorm_float32_input", "cogan", "cpu", "mixed precision: the fused op's input cast to float32 first; "
          "cuDNN normalises float16/bfloat16 input with float32 statistics itself"),
    Lever("prelu_written_gradient", "cogan", "both", "the scalar PReLU's gradient written out: fewer full-size passes"),
    Lever("xla_prelu", "cogan", "cpu", "that PReLU (and the paper network's per-channel one) forward and backward as "
          "one small XLA cluster each: one pass over the activations instead of three (forward) and five (backward)"),
    Lever("xla_batchnorm_prelu", "cogan", "cpu", "Q2's scalar-statistics BatchNorm and the PReLU after it as one small "
          "XLA cluster each way: the normalisation's scale and shift fused into the PReLU"),
    Lever("subpixel_stem_gradient", "cogan", "cpu", "the input gradient of D's stem convolutions (5x5, stride 2) as a "
          "3x3 convolution + depth_to_space: oneDNN's kernel for the one-channel transposed convolution is slow"),
    Lever("dense_bmm_gradient", "all", "cpu", "the dense layers' input gradient as BatchMatMulV2 (the CoGAN's, the "
          "vanilla GAN's, ClusterGAN's paper networks'), which oneDNN runs 1.7-3x faster than MatMul with "
          "transpose_b; a GPU runs cuBLAS's MatMul"),
    Lever("leaky_relu_written_gradient", "clustergan", "both", "paper networks: LeakyReLU's zero second derivative "
          "cut from the gradient penalty's double backward"),
)


# The vanilla GAN's dense layers take the BatchMatMulV2 input gradient from this many weights on: at 1,024 units
# (--hidden_size 1024) its step ran 1.07x faster with it; at 128 every layer is below 2^17 weights and the step
# 2% slower (docs/PERFORMANCE.md).
DENSE_BMM_MIN_WEIGHTS = 2 ** 19


def on(lever: str, device: str) -> bool:
    """Whether ``lever`` is on by default for a run on ``device`` ("cpu" or "gpu")."""
    where = next(x.device for x in LEVERS if x.name == lever)
    return where in ("both", device)
