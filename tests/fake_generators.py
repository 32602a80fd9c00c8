"""Generators exported by hand as SavedModels of the three kinds, with the signatures the port's exports have:
a CoGAN pair of template digits (inverse or not), a vanilla GAN's, and a ClusterGAN's with an encoder whose
clusters are the labels under a permutation. What they make is known, so the evaluation's numbers are too.

Apart from tests/conftest.py because they are TensorFlow modules: conftest stays free of TensorFlow, which
every test run loads."""

import numpy as np
import tensorflow as tf

from tests.conftest import templates


class FakeCogan(tf.Module):
    """z -> the template of digit argmax(z[:10]) on top, and its inverse (or, not inverted, itself) below."""

    def __init__(self, inverse=True):
        super().__init__()
        self.t = tf.constant(templates())
        self.inverse = inverse

    @tf.function(input_signature=[tf.TensorSpec([None, 100], tf.float32, name="z")])
    def serve(self, z):
        top = tf.gather(self.t, tf.argmax(z[:, :10], axis=1))
        return {"top": top, "bot": 1.0 - top if self.inverse else top}


class FakeVanilla(tf.Module):
    """z -> the template of digit argmax(z[:10])."""

    def __init__(self):
        super().__init__()
        self.t = tf.constant(templates())

    @tf.function(input_signature=[tf.TensorSpec([None, 128], tf.float32, name="z")])
    def serve(self, z):
        return {"images": tf.gather(self.t, tf.argmax(z[:, :10], axis=1))}


PERM = np.array([3, 7, 0, 9, 1, 5, 2, 8, 6, 4])


class FakeClusterGan(tf.Module):
    """G draws the template of class argmax(z_c); the encoder matches templates, under a permutation of
    cluster numbers (so a correct clustering has ACC 1 only after matching clusters to labels)."""

    def __init__(self):
        super().__init__()
        self.t = tf.constant(templates())
        self.w = tf.constant(templates().reshape(10, 784).T[:, np.argsort(PERM)])

    @tf.function(input_signature=[tf.TensorSpec([None, 30], tf.float32, name="z_n"),
                                  tf.TensorSpec([None, 10], tf.float32, name="z_c")])
    def serve(self, z_n, z_c):
        return {"images": tf.gather(self.t, tf.argmax(z_c, axis=1))}

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")])
    def encode(self, images):
        scores = tf.reshape(images, [-1, 784]) @ self.w
        return {"z_n": tf.zeros([tf.shape(images)[0], 30]), "class_probs": tf.nn.softmax(10.0 * scores)}


def save_module(module, path, encode=False):
    """``module`` saved at ``path`` as an exported generator is (with its ``encode`` signature if asked)."""
    sigs = {"serving_default": module.serve}
    if encode:
        sigs["encode"] = module.encode
    tf.saved_model.save(module, path, signatures=sigs)
    return path
