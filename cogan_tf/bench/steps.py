"""The steps the benchmark's rows time, beside each model's own ``train_step``: the CoGAN's reference steps
(the straightforward baseline, the port's step with one speed lever off), ClusterGAN's paper-recipe updates
on their own, and the CoGAN paper recipe's step without its levers. Each builder takes a built GAN and
returns the function to time; TensorFlow is imported only when one is called (``python -m cogan_tf.bench``
refuses bad flags before it starts)."""

from __future__ import annotations

from typing import Callable, Optional

def straightforward_cogan_step(gan) -> Callable:
    """The baseline: the CoGAN step as the original graph computes it: G1 and G2 each on their own
    (the shared trunk twice, forward and backward), D1 and D2 separately on real and fake, G run
    again for every update, BatchNorm and PReLU unfused (``cogan_fast.use_plain_layers``); in a tf.function,
    without XLA."""
    from cogan_tf import cogan_fast

    return cogan_fast.reference_cogan_step(cogan_fast.use_plain_layers(gan), trunk_per_domain=True)


def recompute_cogan_step(gan) -> Callable:
    """The port's step before the speed levers (as first committed): the trunk once for both
    domains, but G run forward for every update, the heads as two deconvs, the layers unfused."""
    from cogan_tf import cogan_fast

    return cogan_fast.reference_cogan_step(cogan_fast.use_plain_layers(gan))


def deconv_heads_cogan_step(gan) -> Callable:
    """The port's step with the two-channel head computed as a transposed convolution, not as the
    sub-pixel convolution (``cogan_fast.subpixel_deconv``)."""
    gan.subpixel_heads = False
    return gan.train_step


def _reference(gan, **levers) -> Callable:
    from cogan_tf import cogan_fast

    return cogan_fast.reference_cogan_step(gan, **levers)


def unfused_bn_cogan_step(gan) -> Callable:
    """The port's step with the layers as first written (``cogan_fast.use_plain_layers``)."""
    from cogan_tf import cogan_fast

    return cogan_fast.use_plain_layers(gan).train_step


def layer_levers_off(*names: str) -> Callable:
    """The port's step with the layer levers ``names`` (``cogan_fast.LAYER_LEVERS``) off."""
    def step(gan):
        from cogan_tf import cogan_fast

        return cogan_fast.use_layer_levers(gan, **{name: False for name in names}).train_step

    return step


# The three written gradients of the CoGAN step: its dense layers' input gradients as BatchMatMulV2, Q2's
# scalar statistics by reductions, D's stem convolutions' input gradients as sub-pixel convolutions.
GRADIENT_LEVERS = ("dense_bmm_gradient", "written_scalar_batchnorm", "subpixel_stem_gradient")
# Its small XLA clusters: the PReLUs, and Q2's BatchNorm with the PReLU after it.
FUSION_LEVERS = ("xla_prelu", "xla_batchnorm_prelu")

COGAN_STEPS = {
    "straightforward": straightforward_cogan_step,
    "recompute": recompute_cogan_step,
    "unfused_heads": lambda gan: _reference(gan, reuse_g_forward=True),
    "no_reuse": lambda gan: _reference(gan, fused_heads=True),
    "unfused_bn": unfused_bn_cogan_step,
    "deconv_heads": deconv_heads_cogan_step,
    "dense_matmul_grad": layer_levers_off("dense_bmm_gradient"),
    "fused_scalar_bn": layer_levers_off("written_scalar_batchnorm"),
    "stem_deconv_grad": layer_levers_off("subpixel_stem_gradient"),
    "plain_grads": layer_levers_off(*GRADIENT_LEVERS),
    "tf_prelu": layer_levers_off("xla_prelu"),
    "tf_bn_prelu": layer_levers_off("xla_batchnorm_prelu"),
    "plain_elementwise": layer_levers_off(*FUSION_LEVERS),
    "plain_ops": layer_levers_off(*GRADIENT_LEVERS, *FUSION_LEVERS),  # its row also takes Keras's Adam
}


def paper_critic_step(gan) -> Callable:
    """ClusterGAN ``--recipe paper``: the critic update alone (z, G's fake batch, D on real, fake and
    the interpolate, the gradient penalty's double backward, D's Adam update), never the G+E update."""
    return gan.critic_update


def paper_ge_step(gan) -> Callable:
    """ClusterGAN ``--recipe paper``: the G+E update alone, on a fresh z for a batch of the input's size
    (the images themselves are not used: G+E never sees real ones)."""
    from cogan_tf.clustergan import batch_size

    return lambda x: gan.fresh_ge_update(batch_size(x))


def _plain(step: Callable) -> Callable:
    """``step`` of the paper networks with Keras's own layer gradients (``clustergan_networks.use_plain_layers``)."""
    def plain_step(gan):
        from cogan_tf.clustergan_networks import use_plain_layers

        return step(use_plain_layers(gan))

    return plain_step


def cogan_paper_step(fast_layers: bool = True, matmul_deconv: bool = True, xla_prelu: bool = True) -> Callable:
    """CoGAN ``--recipe paper``: its step with its layers' written gradients and fused ops
    (``fast_layers``), G's l1 forward as a matmul (``matmul_deconv``) and the PReLUs as XLA clusters
    (``xla_prelu``), or without."""
    def step(gan):
        from cogan_tf.paper_layers import CaffeDeconv, ChannelPReLU

        if not fast_layers:
            gan.use_plain_layers()
        for layer in gan.generator._flatten_layers() + gan.discriminator._flatten_layers():
            if isinstance(layer, CaffeDeconv) and not matmul_deconv:
                layer.matmul_forward = False
            if isinstance(layer, ChannelPReLU) and not xla_prelu:
                layer.xla = False
        return gan.train_step

    return step


# Row.step -> the step a row times (rows without one: COGAN_STEPS by variant, else the model's train_step).
STEPS = {"paper_critic": paper_critic_step, "paper_ge": paper_ge_step,
         "paper_critic_plain": _plain(paper_critic_step), "paper_ge_plain": _plain(paper_ge_step),
         "cogan_paper_plain": cogan_paper_step(fast_layers=False, matmul_deconv=False),
         "cogan_paper_deconv": cogan_paper_step(matmul_deconv=False),
         "cogan_paper_tf_prelu": cogan_paper_step(xla_prelu=False)}


def step_for(gan, variant: str, step: Optional[str] = None) -> Callable:
    """The function a row times: :data:`STEPS` by the row's ``step``, else :data:`COGAN_STEPS` by its variant,
    else the model's own ``train_step``."""
    if step is not None:
        return STEPS[step](gan)
    return COGAN_STEPS[variant](gan) if variant in COGAN_STEPS else gan.train_step
