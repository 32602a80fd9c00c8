"""python -m cogan_tf.evaluate: the sample-quality report of a SavedModel, a checkpoint or grid PNGs;
two reports side by side (--compare); two runs' grids step by step (--grid_dirs).

The flags are defined only when this runs as a program (:func:`define_flags`), never on import.
"""

import os
import sys

from absl import flags

from cogan_tf import cli, data, outputs, pairs, published, record as record_lib
from cogan_tf.config import SEED_LIMIT
from cogan_tf.errors import ClassifierError, UsageError
from cogan_tf.evaluate import grid_compare
from cogan_tf.evaluate.image_metrics import DEFAULT_THRESHOLD
from cogan_tf.evaluate.reports import format_compare, load_report, scored_dataset
from cogan_tf.evaluate.samples import DEFAULT_N, MAX_N, load_saved_model, sample_stream, samples_from_grids
from cogan_tf.evaluate.scoring import load_classifier, report_for_gan, run_report

LIST_FLAGS = ("grids", "compare", "grid_dirs")


def define_flags() -> None:
    flags.DEFINE_string("saved_model", None, "Exported generator SavedModel to score (e.g. export/cogan)")
    flags.DEFINE_string("checkpoint_dir", None, "Checkpoint to restore and score (its config.json rebuilds the model)")
    flags.DEFINE_enum("model", None, ["cogan", "vanilla", "clustergan"],
                      "With --checkpoint_dir holding several runs: which one")
    flags.DEFINE_list("grids", None, "CoGAN grid PNG pairs: --grids TOP.png BOT.png [TOP2.png BOT2.png ...]")
    flags.DEFINE_list("compare", None, "Print two JSON reports side by side: --compare A.json B.json")
    flags.DEFINE_list("grid_dirs", None, "Score two CoGAN runs' grids step by step: --grid_dirs RUN_SAMPLES "
                      "[REFERENCE_SAMPLES] (each holding top/ and bot/; the reference defaults to andrewliao11's "
                      "published grids in <data_dir>/andrewliao11/samples, which `python download.py "
                      "andrewliao11` fetches)")
    flags.DEFINE_string("plot", None, "With --grid_dirs: also plot the scores against the training step to this PNG")
    flags.DEFINE_integer("steps_per_epoch", None, "With --grid_dirs: the step of train_EE_IIII is "
                         "EE * steps_per_epoch + IIII + 1 [546, the original's floor(70000 / 128)]")
    flags.DEFINE_enum("pair", None, list(pairs.PAIRS), "With --grids or --grid_dirs: the CoGAN's pair of domains, "
                      "whose transform maps G1(z) into the second domain for the pixel agreement (a SavedModel or "
                      f"checkpoint records its own) [{pairs.DEFAULT_PAIR}]")
    flags.DEFINE_float("agreement_threshold", DEFAULT_THRESHOLD, "CoGAN: both images of a pair are binarised at this "
                       "value (0 to 1, exclusive) for the pixel agreement and the ink fractions "
                       f"[{DEFAULT_THRESHOLD}]")
    flags.DEFINE_string("out", None, "Also write the report as JSON here")
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ [data]")
    flags.DEFINE_string("dataset", None, "Real data and classifier: mnist or fashion_mnist; a model is scored "
                                         "against the dataset it was trained on, which its export or checkpoint "
                                         "records, and another is refused [the recorded dataset, else mnist]")
    flags.DEFINE_integer("num_samples", DEFAULT_N, f"Samples (CoGAN: pairs) drawn from a model, 2 to {MAX_N:,}: "
                         "scored in batches, so memory does not grow with it; the cap is 20 times the 50,000 the "
                         f"Frechet distance is usually quoted at, hours of CPU already [{DEFAULT_N}]")
    flags.DEFINE_integer("seed", 0, "Seed of the z drawn from a model [0]")
    flags.DEFINE_boolean("retrain_classifier", False, "Train a classifier with the shipped one's recipe on --data_dir and score with it instead "
                         "of the shipped one (says how far the two agree) [False]")
    flags.DEFINE_integer("classifier_epochs", None, "Epochs when (re)training the classifier "
                                                    "[mnist 3, fashion_mnist 8]")


def main(argv):
    f = flags.FLAGS
    sources = [s for s in ("saved_model", "checkpoint_dir", "grids", "compare", "grid_dirs") if getattr(f, s)]
    if len(sources) > 1:
        raise UsageError(f"give one of --saved_model, --checkpoint_dir, --grids, --compare, --grid_dirs (got "
                         f"{', '.join('--' + s for s in sources)})")
    if not sources and not f.retrain_classifier:
        raise UsageError("nothing to evaluate: give --saved_model, --checkpoint_dir, --grids, --compare or "
                         "--grid_dirs (or --retrain_classifier alone to train the classifier)")
    for only in ("plot", "steps_per_epoch"):
        if getattr(f, only) is not None and not f.grid_dirs:
            raise UsageError(f"--{only} goes with --grid_dirs RUN_SAMPLES REFERENCE_SAMPLES")
    if f.steps_per_epoch is not None and f.steps_per_epoch < 1:
        raise UsageError(f"--steps_per_epoch={f.steps_per_epoch}: must be at least 1")
    if not 2 <= f.num_samples <= MAX_N:
        raise UsageError(f"--num_samples={f.num_samples}: give 2 to {MAX_N:,} (see --help)")
    if f.seed < 0:
        raise UsageError(f"--seed={f.seed}: must be 0 or more")
    if f.seed >= SEED_LIMIT:
        raise UsageError(f"--seed={f.seed}: must be at most {SEED_LIMIT - 1} (2^32 - 1: K-means seeds are 32-bit)")
    if f.dataset is not None and f.dataset not in data.DATASETS:
        raise UsageError(f"--dataset={f.dataset}: choose one of {', '.join(data.DATASETS)}")
    if f.pair is not None and not (f.grids or f.grid_dirs):
        raise UsageError(f"--pair={f.pair} goes with --grids or --grid_dirs; a --saved_model or --checkpoint_dir "
                         "records the pair it was trained on")
    if f.grid_dirs and len(f.grid_dirs) == 1 and f.pair not in (None, pairs.DEFAULT_PAIR):
        raise UsageError(f"--pair={f.pair}: andrewliao11's published grids, the default REFERENCE_SAMPLES, are of "
                         f"the negatives; give --grid_dirs RUN_SAMPLES REFERENCE_SAMPLES of two {f.pair} runs")
    if not 0 < f.agreement_threshold < 1:
        raise UsageError(f"--agreement_threshold={f.agreement_threshold}: give a value between 0 and 1 (exclusive)")
    if f["agreement_threshold"].present and not (f.saved_model or f.checkpoint_dir or f.grids or f.grid_dirs):
        raise UsageError("--agreement_threshold goes with --saved_model, --checkpoint_dir, --grids or --grid_dirs")
    if f.classifier_epochs is not None and f.classifier_epochs < 1:
        raise UsageError(f"--classifier_epochs={f.classifier_epochs}: must be at least 1")
    if f.out and not (f.saved_model or f.checkpoint_dir or f.grids or f.grid_dirs):
        raise UsageError("--out goes with --saved_model, --checkpoint_dir, --grids or --grid_dirs (--compare and "
                         "--retrain_classifier alone write no report)")
    if f.grid_dirs and len(f.grid_dirs) not in (1, 2):
        raise UsageError(f"--grid_dirs takes one or two directories, RUN_SAMPLES [REFERENCE_SAMPLES]; got "
                         f"{len(f.grid_dirs)}")
    grid_dirs = (f.grid_dirs + [published.samples_dir(f.data_dir)])[:2] if f.grid_dirs else []
    check_outputs(f, grid_dirs)
    if f.compare:
        if len(f.compare) != 2:
            raise UsageError(f"--compare takes two JSON reports, got {len(f.compare)}")
        a, b = (load_report(p) for p in f.compare)
        print(format_compare(a, b, *f.compare))
        return 0
    # What a model was trained on, read before TensorFlow starts: a contradicting --dataset is refused then.
    record = dataset = None
    if f.saved_model:
        marker = outputs.read_export_marker(f.saved_model) or {}
        dataset = scored_dataset(f.dataset, marker.get("dataset"), f.saved_model, outputs.EXPORT_MARKER)
    elif f.checkpoint_dir:
        record = record_lib.find_run(f.checkpoint_dir, f.model)
        dataset = scored_dataset(f.dataset, record.config.get("dataset"), record.directory, record_lib.CONFIG_FILE)
    # Grids are read (or refused) before TensorFlow starts; every path below uses it.
    if f.grid_dirs:
        pair = f.pair or pairs.DEFAULT_PAIR
        dirs = grid_compare.read_grid_dirs(*grid_dirs, f.steps_per_epoch or grid_compare.STEPS_PER_EPOCH, pair)
        if f.plot:
            grid_compare.check_plot(dirs)
        cli.start_tensorflow()
        grid_compare.run(dirs, f.data_dir, f.dataset or "mnist", out=f.out, plot=f.plot, threshold=f.agreement_threshold,
                         retrain=f.retrain_classifier, epochs=f.classifier_epochs)
        return 0
    samples = samples_from_grids(f.grids, f.pair or pairs.DEFAULT_PAIR) if f.grids else None
    cli.start_tensorflow()
    # The model first: a missing or bad input is refused before the classifier trains.
    dataset = dataset or f.dataset or "mnist"
    gan = None
    if f.checkpoint_dir:
        from cogan_tf import runner

        gan = runner.gan_from_checkpoint(f.checkpoint_dir, f.data_dir, f.model, record=record)
        # The record inside the checkpoint has the last word (config.json may have been edited).
        dataset = scored_dataset(f.dataset, gan.train_cfg.dataset, record.directory, "the record inside its checkpoint")
    elif f.saved_model:
        samples = sample_stream(load_saved_model(f.saved_model), n=f.num_samples, seed=f.seed, source=f.saved_model)
    clf = load_classifier(f.data_dir, dataset, f.retrain_classifier, f.classifier_epochs)
    if gan is not None:
        report_for_gan(gan, f.data_dir, n=f.num_samples, seed=f.seed, out=f.out, dataset=dataset, clf=clf,
                       threshold=f.agreement_threshold)
    elif samples is not None:
        run_report(samples, f.data_dir, dataset, out=f.out, clf=clf, threshold=f.agreement_threshold)
    else:
        print(f"{dataset} classifier: test accuracy {clf.test_accuracy:.4f}")
    return 0


def check_outputs(f, grid_dirs) -> None:
    """--out and --plot, before anything is read or scored: each a file that can be written, neither the
    other, and none of what the command reads (a grid, a file in a grid folder's top/ or bot/, in the
    SavedModel or checkpoint folder, or in --data_dir's datasets)."""
    inputs = list(f.grids or []) + [os.path.join(d, side) for d in grid_dirs for side in grid_compare.DOMAINS]
    inputs += [p for p in (f.saved_model, f.checkpoint_dir) if p]
    inputs += [data.dataset_dir(f.data_dir, d) for d in data.DATASETS + (published.NAME,)]
    cli.check_outputs([("--out", f.out), ("--plot", f.plot)], inputs)


if __name__ == "__main__":
    define_flags()
    sys.argv = cli.fold_list_args(sys.argv, LIST_FLAGS)
    cli.run(main, known_errors=(ClassifierError,))
