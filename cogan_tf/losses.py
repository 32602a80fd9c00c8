"""Losses as small pure functions of logits (or probabilities) and targets."""

from __future__ import annotations

import tensorflow as tf


def sigmoid_ce(logits, target: float):
    """Mean sigmoid cross-entropy of ``logits`` against a constant (possibly smoothed) ``target``:
    ``max(l, 0) - l * t + log(1 + exp(-|l|))``, TF's numerically stable form, as the original uses."""
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target),
                                                                  logits=logits))


def cogan_loss_logits(h3, loss_on_logits: bool = False):
    """What the CoGAN's losses take as logits, from D's last layer h3.

    Quirk Q1 of the original (``loss_on_logits=False``): its discriminator returns
    ``(sigmoid(h3), h3)`` and the callers unpack it as ``D_logits, D``, so every loss is a sigmoid
    cross-entropy of ``sigmoid(h3)`` taken as logits: a double sigmoid. The effective probability
    sigmoid(sigmoid(h3)) stays in (0.5, 0.731), so d_loss >= 2.21 and D never becomes confident.
    ``loss_on_logits=True``: the usual loss on h3."""
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


def bce_probs(probs, target: float, eps: float = 1e-7):
    """Mean binary cross-entropy of probabilities (PyTorch's ``nn.BCELoss`` on a sigmoid output, as the
    vanilla GAN and ClusterGAN originals use; PyTorch clamps the log at -100, here probabilities are
    clipped to [eps, 1 - eps])."""
    p = tf.clip_by_value(tf.cast(probs, tf.float32), eps, 1.0 - eps)
    t = tf.cast(target, tf.float32)
    return tf.reduce_mean(-(t * tf.math.log(p) + (1.0 - t) * tf.math.log(1.0 - p)))
