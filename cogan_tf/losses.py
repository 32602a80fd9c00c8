"""Losses as small pure functions of logits and targets: the CoGAN's (docs/ORIGINAL.md §1.5, §1.7),
the one BCE discriminator and generator loss of the vanilla GAN and the ClusterGAN, and the ClusterGAN
paper's WGAN-GP critic and G+E objective (docs/ORIGINAL.md §3.2, §4.4); and PyTorch Adam's weight decay, which
the ClusterGAN's original adds to its gradients as an L2 penalty's."""

from __future__ import annotations

from typing import Dict

import tensorflow as tf


def sigmoid_ce(logits, target: float):
    """Mean sigmoid cross-entropy of ``logits`` against a constant (possibly smoothed) ``target``:
    ``max(l, 0) - l * t + log(1 + exp(-|l|))``, TF's numerically stable form, as the original uses."""
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target),
                                                                  logits=logits))


def cogan_loss_logits(h3, loss_on_logits: bool = False):
    """What the CoGAN's losses take as logits, from D's last layer h3: ``sigmoid(h3)`` as the original
    (``loss_on_logits=False``, quirk Q1, the double sigmoid: D never becomes confident, d_loss >= 2.21;
    docs/ORIGINAL.md §1.5), or the usual h3."""
    h3 = tf.cast(h3, tf.float32)
    return h3 if loss_on_logits else tf.sigmoid(h3)


def cogan_d_losses(real1, fake1, real2, fake2, real_target: float = 0.9, fake_target: float = 0.1):
    """The CoGAN discriminators' losses from D1/D2 logits on real and fake batches (label smoothing
    0.9 / 0.1 as the original). ``d_loss = d1_loss + d2_loss``."""
    out = {
        "d1_loss_real": sigmoid_ce(real1, real_target),
        "d1_loss_fake": sigmoid_ce(fake1, fake_target),
        "d2_loss_real": sigmoid_ce(real2, real_target),
        "d2_loss_fake": sigmoid_ce(fake2, fake_target),
    }
    out["d1_loss"] = out["d1_loss_real"] + out["d1_loss_fake"]
    out["d2_loss"] = out["d2_loss_real"] + out["d2_loss_fake"]
    out["d_loss"] = out["d1_loss"] + out["d2_loss"]
    return out


def cogan_g_losses(fake1, fake2, target: float = 0.9):
    """The CoGAN generators' losses from D1/D2 logits on fake batches (target 0.9, as the original).
    ``g_loss = g1_loss + g2_loss``."""
    out = {"g1_loss": sigmoid_ce(fake1, target), "g2_loss": sigmoid_ce(fake2, target)}
    out["g_loss"] = out["g1_loss"] + out["g2_loss"]
    return out


def paper_d_losses(real1, fake1, real2, fake2, real_target: float = 1.0, fake_target: float = 0.0):
    """The paper's D (its Caffe model: one SoftmaxWithLoss over the four batches stacked, real and fake of
    each domain, equal in size): ``d_loss`` is the mean over all their rows, the mean of the four batches'
    losses; ``d1_loss``, ``d2_loss`` each domain's mean."""
    out = {"d1_loss_real": sigmoid_ce(real1, real_target), "d1_loss_fake": sigmoid_ce(fake1, fake_target),
           "d2_loss_real": sigmoid_ce(real2, real_target), "d2_loss_fake": sigmoid_ce(fake2, fake_target)}
    out["d1_loss"] = 0.5 * (out["d1_loss_real"] + out["d1_loss_fake"])
    out["d2_loss"] = 0.5 * (out["d2_loss_real"] + out["d2_loss_fake"])
    out["d_loss"] = 0.5 * (out["d1_loss"] + out["d2_loss"])
    return out


def paper_g_losses(fake1, fake2, target: float = 1.0):
    """The paper's G: each domain's fakes against the real label; ``g_loss`` the mean over both domains'
    fakes."""
    out = {"g1_loss": sigmoid_ce(fake1, target), "g2_loss": sigmoid_ce(fake2, target)}
    out["g_loss"] = 0.5 * (out["g1_loss"] + out["g2_loss"])
    return out


def discriminator_loss(real_logits, fake_logits) -> Dict[str, tf.Tensor]:
    """The vanilla GAN's and the ClusterGAN's D: BCE with real target 1 and fake target 0; ``d_loss`` is
    their sum (the originals add the two BCELoss values, they do not average them)."""
    real = sigmoid_ce(real_logits, 1.0)
    fake = sigmoid_ce(fake_logits, 0.0)
    return {"d_loss": real + fake, "d_loss_real": real, "d_loss_fake": fake}


def generator_loss(fake_logits) -> tf.Tensor:
    """BCE of D's verdict on the fakes against target 1 (the non-saturating generator loss)."""
    return sigmoid_ce(fake_logits, 1.0)


def critic_loss(real_scores, fake_scores, penalty, gp_lambda: float = 10.0) -> Dict[str, tf.Tensor]:
    """WGAN-GP critic: ``d_loss`` = E[D(G(z))] - E[D(x)] + gp_lambda * penalty. Also reported:
    ``d_wasserstein`` = E[D(x)] - E[D(G(z))] (the critic's estimate of the distance) and ``d_gp``."""
    w = tf.reduce_mean(tf.cast(real_scores, tf.float32)) - tf.reduce_mean(tf.cast(fake_scores, tf.float32))
    return {"d_loss": -w + gp_lambda * penalty, "d_wasserstein": w, "d_gp": penalty}


def gradient_penalty(critic, real, fake, eps) -> tf.Tensor:
    """E[(||grad_x critic(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, ``eps`` one number
    per sample (shape [N, 1, 1, 1]). Call it under the critic update's tape: the gradient of the
    penalty with respect to the critic's weights then goes through this inner gradient (a second
    derivative). The critic has no BatchNorm, so the gradient of the summed scores with respect to
    x_hat is each sample's own gradient."""
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        total = tf.reduce_sum(tf.cast(critic(x_hat), tf.float32))
    grad = tape.gradient(total, x_hat)
    # + 1e-12: the square root's derivative at 0 would be infinite (a zero gradient, e.g. a dead critic).
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=tf.range(1, tf.rank(grad))) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def generator_encoder_loss(fake_logits, zn_hat, z_n, class_logits, classes, betan: float = 10.0,
                           betac: float = 10.0, critic: str = "bce") -> Dict[str, tf.Tensor]:
    """The G+E objective: BCE(D(G(z)), 1) (``critic="wgan_gp"``: -E[D(G(z))]) + betan * MSE(E_n, z_n)
    + betac * CE(E_logits, class). MSE is the mean over all entries (PyTorch's MSELoss), CE the mean
    over the batch of softmax cross-entropy with integer classes (PyTorch's CrossEntropyLoss)."""
    if critic == "wgan_gp":
        v = -tf.reduce_mean(tf.cast(fake_logits, tf.float32))
    else:
        v = generator_loss(fake_logits)
    zn = tf.reduce_mean(tf.square(tf.cast(zn_hat, tf.float32) - tf.cast(z_n, tf.float32)))
    zc = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(classes, tf.int32), logits=tf.cast(class_logits, tf.float32)))
    return {"ge_loss": v + betan * zn + betac * zc, "ge_adv_loss": v, "zn_loss": zn, "zc_loss": zc}


def coupled_weight_decay(grads, variables, weight_decay: float, scale=None):
    """PyTorch Adam's ``weight_decay``: ``grad + wd * w`` fed to Adam (an L2 penalty through the
    adaptive moments), not AdamW's separate ``w -= lr * wd * w``. ``scale``: the gradients are of a
    loss multiplied by this loss scale (float16 mixed precision), so the penalty's gradient is too,
    and the optimizer's unscaling gives ``grad + wd * w`` again."""
    if not weight_decay:
        return list(grads)

    def penalty(g, v):
        p = weight_decay * tf.cast(v, g.dtype)
        return p if scale is None else tf.cast(scale, g.dtype) * p

    return [None if g is None else g + penalty(g, v) for g, v in zip(grads, variables)]
