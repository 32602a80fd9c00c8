"""python invert.py: write the inverted digits (255 - x) that the CoGAN's second domain trains on.

Writes ./data/mnist/invert/train-images-idx3-ubyte.npy and t10k-images-idx3-ubyte.npy, uint8,
shape (N, 28, 28, 1). Safe to run again: files already right are left alone, so a read-only folder that
already holds them is fine. The image files are checked against their known sha256 first: a damaged one
is refused, naming the download that fetches it again.
"""

from absl import flags

from cogan_tf import cli, data


def define_flags():
    """Define invert's flags; only its program calls this (no flag is defined when the module is imported)."""
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ with the IDX files.")
    flags.DEFINE_enum("dataset", "mnist", list(data.DATASETS), "Which dataset's images to invert.")


FLAGS = flags.FLAGS


def main(argv):
    data.write_inverted(FLAGS.data_dir, FLAGS.dataset)
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
