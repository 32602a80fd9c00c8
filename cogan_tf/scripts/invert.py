"""python invert.py [--pair negative|edge|rotate]: write the second domain the CoGAN trains on.

The pair's transform of both image files (cogan_tf/pairs.py, docs/ORIGINAL.md §5.2): ``negative`` (the
default, 255 - x) in ./data/mnist/invert/, ``edge`` (the CoGAN paper's: 3x3 dilation minus the image) in
./data/mnist/edge/, ``rotate`` (90 degrees) in ./data/mnist/rotate/; each as train-images-idx3-ubyte.npy
and t10k-images-idx3-ubyte.npy, uint8, shape (N, 28, 28, 1). Safe to run again: files already right are
left alone, so a read-only folder that already holds them is fine. The image files are checked against
their known sha256 first: a damaged one is refused, naming the download that fetches it again.
"""

from absl import flags

from cogan_tf import cli, data, pairs


def define_flags():
    """Define invert's flags; only its program calls this (no flag is defined when the module is imported)."""
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ with the IDX files.")
    flags.DEFINE_enum("dataset", "mnist", list(data.DATASETS), "Which dataset's images to transform.")
    flags.DEFINE_enum("pair", pairs.DEFAULT_PAIR, list(pairs.PAIRS),
                      "The second domain: " + "; ".join(f"{p}: {d}" for p, d in pairs.DESCRIPTIONS.items())
                      + f" [{pairs.DEFAULT_PAIR}]")


FLAGS = flags.FLAGS


def main(argv):
    pairs.write_pair(FLAGS.data_dir, FLAGS.dataset, FLAGS.pair)
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
