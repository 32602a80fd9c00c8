"""Make the classifier weights the package ships (cogan_tf/classifiers/<dataset>.npz), so that every
user's evaluation scores with the very same classifier and the first evaluation needs no training.

Trains each dataset's classifier with its recipe (cogan_tf.evaluate.classifier.RECIPES), rounds the weights to
float16 (half the size; the test accuracy is measured again after rounding, and that is the figure
recorded), writes the .npz and prints the entry of cogan_tf.evaluate.classifier.SHIPPED to paste:

    python tools/ship_classifier.py --data_dir data mnist fashion_mnist

``--from_cache`` takes the classifier cached in <data_dir>/<dataset>/classifier/ by an earlier
``--retrain_classifier`` instead of training one.
"""

import argparse
import hashlib
import os
import platform
import time

from cogan_tf import data
from cogan_tf.evaluate import classifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", choices=data.DATASETS)
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--from_cache", action="store_true")
    args = parser.parse_args()
    for dataset in args.datasets:
        recipe = classifier.RECIPES[dataset]
        start = time.time()
        if args.from_cache:
            clf = classifier.load(classifier.cache_dir(args.data_dir, dataset))
        else:
            x, y = data.load_split(args.data_dir, dataset, "train")
            xt, yt = data.load_split(args.data_dir, dataset, "test")
            clf = classifier.train(x, y, xt, yt, recipe)
        path = classifier.shipped_path(dataset)
        classifier.write_shipped(clf, path)
        shipped = classifier.load_shipped(dataset, check=False)
        x_test, y_test = data.load_split(args.data_dir, dataset, "test")
        acc = shipped.accuracy(x_test, y_test)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        print(f"{dataset}: {path}, {os.path.getsize(path)} bytes, test accuracy {acc:.4f} after float16 "
              f"rounding ({clf.test_accuracy:.4f} before), {time.time() - start:.0f} s on {platform.machine()}")
        print(f'    "{dataset}": Shipped(sha256="{digest}", test_accuracy={acc!r}),')


if __name__ == "__main__":
    main()
