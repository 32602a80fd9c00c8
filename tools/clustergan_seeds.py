r"""The ClusterGAN paper's selection protocol over N seeds: of N runs, the one with the best validation
K-means purity, and that run's test K-means purity (the paper's "ACC"), NMI and ARI; beside it the mean
+- std of the same test scores over the N runs (what the authors' README tabulates). Writes OUT.json
(every run's validation and test scores of both protocols, the selection, the means) and OUT.md (one
Markdown table).

    # train seeds 0..4 one after another (main.py runs in RUNS_ROOT/seed<S>/), then score them
    python tools/clustergan_seeds.py --train_seeds 0,1,2,3,4 --runs_root runs/paper_mnist --data_dir data \
        --main_flags="--recipe paper --dataset mnist --val_size 5000" --out docs/clustergan_paper_mnist_seeds
    # score runs already trained (each with --val_size: the validation split is what selects)
    python tools/clustergan_seeds.py --checkpoint_dirs runs/a/checkpoint,runs/b/checkpoint --data_dir data \
        --out seeds

A run trained again with the same command resumes where it stopped. Each run is scored at the
checkpoint it kept by validation (``--checkpoint best``, what ``main.py --is_train False`` evaluates) or
at its latest (``--checkpoint latest``: the authors score each run once, at its end). Standard deviations
are numpy's default, over the N runs (ddof 0).
"""

import os

from absl import flags

from cogan_tf import cli
from cogan_tf.errors import DataError, UsageError
from cogan_tf.evaluate import clustergan_seeds as seeds_lib


def define_flags():
    flags.DEFINE_list("checkpoint_dirs", [], "Runs already trained: their --checkpoint_dir (or the directory "
                      "holding config.json), comma-separated")
    flags.DEFINE_string("train_seeds", None, "Train these seeds first (comma-separated), each a main.py run in "
                        "--runs_root/seed<S>/, then score them with the --checkpoint_dirs [none]")
    flags.DEFINE_string("runs_root", None, "With --train_seeds: where the runs go")
    flags.DEFINE_string("main_flags", "", "With --train_seeds: main.py flags of every run, e.g. "
                        "\"--recipe paper --dataset mnist --val_size 5000\"")
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ [data]")
    flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Score each run at the checkpoint it kept by "
                      "validation, or at its latest (the authors: each run at its end) [best]")
    flags.DEFINE_string("out", "clustergan_seeds", "Write OUT.json and OUT.md [clustergan_seeds]")


def main(argv):
    f = flags.FLAGS
    # Every refusal before the first seed trains (hours) and before TensorFlow starts.
    seeds = seeds_lib.parse_seeds(f.train_seeds)
    if seeds and not f.runs_root:
        raise UsageError("--train_seeds needs --runs_root, the folder the runs go to")
    main_flags = seeds_lib.parse_main_flags(f.main_flags)
    given = list(f.checkpoint_dirs)
    for d in given:
        if not os.path.isdir(d):
            raise DataError(f"--checkpoint_dirs: {d}: no such directory")
        seeds_lib.check_run(d)
    trained = [seeds_lib.seed_dirs(f.runs_root, s)["checkpoint_dir"] for s in seeds]
    seeds_lib.check_distinct(given + trained)
    seeds_lib.check_outputs(f.out, given + trained)
    log = lambda s: print(s, flush=True)  # noqa: E731
    if seeds:
        trained = seeds_lib.train_seeds(seeds, f.runs_root, f.data_dir, main_flags, log=log)
    cli.start_tensorflow()
    seeds_lib.seeds_report(given + trained, f.data_dir, f.out, f.checkpoint, log=log)
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
