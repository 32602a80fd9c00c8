"""Make the classifier weights the package ships (cogan_tf/classifiers/<dataset>.npz), so that every
user's evaluation scores with the very same classifier and the first evaluation needs no training.

Trains each dataset's classifier with its recipe (cogan_tf.evaluate.classifier.RECIPES), rounds the weights to
float16 (half the size; the test accuracy is measured again after rounding, and that is the figure
recorded), writes the .npz and prints the entry of cogan_tf.evaluate.classifier.SHIPPED to paste:

    python tools/ship_classifier.py --data_dir data mnist fashion_mnist

``--from_cache`` takes the classifier cached in <data_dir>/<dataset>/classifier/ by an earlier
``--retrain_classifier`` instead of training one.
"""

import hashlib
import os
import platform
import time

from absl import flags

from cogan_tf import cli, data
from cogan_tf.errors import ClassifierError, UsageError
from cogan_tf.evaluate import classifier


def define_flags():
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ [data]")
    flags.DEFINE_boolean("from_cache", False, "Take the classifier cached in <data_dir>/<dataset>/classifier/ "
                         "instead of training one [False]")


def main(argv):
    f = flags.FLAGS
    datasets = argv[1:]
    if not datasets:
        raise UsageError(f"name the datasets, e.g. python tools/ship_classifier.py mnist (choose from "
                         f"{', '.join(data.DATASETS)})")
    unknown = [d for d in datasets if d not in data.DATASETS]
    if unknown:
        raise UsageError(f"unknown dataset {unknown[0]!r}: choose from {', '.join(data.DATASETS)}")
    cli.start_tensorflow()
    for dataset in datasets:
        recipe = classifier.RECIPES[dataset]
        start = time.time()
        if f.from_cache:
            clf = classifier.load(classifier.cache_dir(f.data_dir, dataset))
        else:
            x, y = data.load_split(f.data_dir, dataset, "train")
            xt, yt = data.load_split(f.data_dir, dataset, "test")
            clf = classifier.train(x, y, xt, yt, recipe)
        path = classifier.shipped_path(dataset)
        classifier.write_shipped(clf, path)
        shipped = classifier.load_shipped(dataset, check=False)
        x_test, y_test = data.load_split(f.data_dir, dataset, "test")
        acc = shipped.accuracy(x_test, y_test)
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        print(f"{dataset}: {path}, {os.path.getsize(path)} bytes, test accuracy {acc:.4f} after float16 "
              f"rounding ({clf.test_accuracy:.4f} before), {time.time() - start:.0f} s on {platform.machine()}")
        print(f'    "{dataset}": Shipped(sha256="{digest}", test_accuracy={acc!r}),')
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main, known_errors=(ClassifierError,), plain_args=True)
