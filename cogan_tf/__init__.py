"""cogan_tf: a TensorFlow 2 / Keras 3 port of andrewliao11's CoGAN-tensorflow, with Keras ports of a
vanilla GAN and a ClusterGAN on the same training loop."""

__version__ = "0.1.0"
