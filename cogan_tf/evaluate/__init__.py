"""Numbers, not only pictures: classifier-based evaluation of the three GANs, and of sample grids.

Samples (from an exported SavedModel, a checkpoint exported the same way, or 8x8 grid PNGs) are scored
batch by batch, so memory does not grow with their number, with the project's classifier
(:mod:`cogan_tf.evaluate.classifier`) by the functions and running sums of
:mod:`cogan_tf.evaluate.image_metrics`: for a CoGAN, the CoGAN paper's pixel agreement of the pair's
transform of G1(z) with G2(z), with each domain's ink; per domain,
the classifier score, the Fréchet distance to the test images and the digit histogram; a ``real``
column as the floor to read them against. What each number means: docs/RESULTS.md, "How the numbers
are made". The samples: :mod:`cogan_tf.evaluate.samples`; the scoring and the entry points: :mod:`cogan_tf.evaluate.scoring`;
the table and the JSON: :mod:`cogan_tf.evaluate.reports`. The command line is ``python -m cogan_tf.evaluate``
(:mod:`cogan_tf.evaluate.__main__`).
"""
