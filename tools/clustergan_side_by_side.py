r"""Clustering curves of ClusterGAN runs against G+E updates, this port's runs beside encodings written by
other code (the ClusterGAN authors' own program, for one), every point scored by the same function.

    python tools/clustergan_side_by_side.py --port_runs runs/port/seed0/checkpoint,runs/port/seed1/checkpoint \
        --encodings "runs/authors/seed*/dump_*.npz" --data_dir data --out clustergan_paper_vs_authors

Port runs: every checkpoint the run kept, scored by ``tools/clustergan_curve.py`` (train with
``--keep_checkpoints 0`` and a ``--save_every`` that lands on the update counts to compare; a ClusterGAN step is
one critic batch, 5 per G+E update with the paper's recipe). Encodings: ``.npz`` files, one per run and point,
holding ``ge_updates`` (int), ``test_zn`` (N x z_n), ``test_logits`` (N x classes), ``test_labels`` (N,) for the
10,000 test images in the dataset's file order, optionally the same three for a validation split (``val_*``), and
``info``, a JSON string with the run's ``seed``. The test labels must equal the dataset's: the same images.

Each point is scored by :func:`cogan_tf.clustering.encoder_clustering` exactly as a port run's own
``cluster_report`` scores it: K-means (seeded with the run's seed) on [z_n, softmax(logits)] (the softmax alone
for runs trained without a z_n loss), whose purity is the ClusterGAN paper's "ACC", NMI and ARI, and the
encoder's argmax. Writes OUT.json (every point), OUT.md (a table per update count: each side's mean, min and
max over its runs, and whether the port's mean lies within the other side's range) and OUT.png (the curves).
With ``--select``, also the paper's protocol at the last common point: the best of N runs by validation K-means
purity with its test scores, and the mean +- std over the N, for each side.
"""

import glob

from absl import flags

from cogan_tf import cli
from cogan_tf.errors import DataError
from cogan_tf.evaluate import clustergan_side_by_side as side_by_side


def define_flags():
    flags.DEFINE_list("port_runs", [], "This port's runs: their --checkpoint_dir, comma-separated")
    flags.DEFINE_string("encodings", "", "Glob (quoted) or comma-separated list of .npz encodings of the other "
                        "side's runs (format: this tool's docstring)")
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ [data]")
    flags.DEFINE_string("port_label", "this port", "The port's name in the table and plot")
    flags.DEFINE_string("other_label", "the authors' code", "The other side's name in the table and plot")
    flags.DEFINE_boolean("select", False, "Also the paper's best of N by validation purity and the mean +- std of "
                         "each side at the last common point (the port's runs need --val_size) [False]")
    flags.DEFINE_string("out", "clustergan_side_by_side", "Write OUT.json, OUT.md and OUT.png "
                        "[clustergan_side_by_side]")


def main(argv):
    f = flags.FLAGS
    paths = []
    for part in f.encodings.split(","):
        if part.strip():
            found = sorted(glob.glob(part.strip()))
            if not found:
                raise DataError(f"--encodings: {part.strip()} matches no file")
            paths += found
    inputs = side_by_side.check_inputs(f.port_runs, paths, f.data_dir, f.out, f.select)  # before TensorFlow starts
    cli.start_tensorflow()
    side_by_side.curves(inputs, f.data_dir, f.port_label, f.other_label, log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
