r"""The learning curve of a ClusterGAN run: every checkpoint of its checkpoint directory (and the best/
copy kept by --val_size) clusters the test set with its encoder, both protocols (the encoder's argmax:
Hungarian ACC, NMI, ARI; the paper's K-means on [z_n, softmax], or on the softmax alone when beta_n is 0:
purity, NMI, ARI), against the G+E updates ("G iterations") it had made. Writes OUT.json (one row per
checkpoint, and the run's validation history if it kept one) and OUT.png (the two protocols side by side,
the paper's figures dotted).

    python tools/clustergan_curve.py --checkpoint_dir runs/paper_mnist/checkpoint --data_dir data \
        --out docs/clustergan_paper_mnist_curve

Rows already in OUT.json are reused (a checkpoint does not change); --recompute scores them again. Keep the
checkpoints with `python main.py ... --keep_checkpoints 0` (the loop keeps only five by default).
"""

from absl import flags

from cogan_tf import cli
from cogan_tf.evaluate import clustergan_curve


def define_flags():
    flags.DEFINE_string("checkpoint_dir", None, "The run's --checkpoint_dir (or the directory holding config.json)")
    flags.DEFINE_string("data_dir", "data", "Directory holding <dataset>/ [data]")
    flags.DEFINE_string("out", None, "Write OUT.json and OUT.png [<checkpoint dir>/curve]")
    flags.DEFINE_boolean("recompute", False, "Score every checkpoint again, also those already in OUT.json [False]")
    flags.DEFINE_string("title", None, "Plot title [the run's recipe and dataset]")
    flags.mark_flag_as_required("checkpoint_dir")


def main(argv):
    f = flags.FLAGS
    clustergan_curve.check(f.checkpoint_dir, f.out, f.recompute)  # every refusal before TensorFlow starts
    cli.start_tensorflow()
    clustergan_curve.curve(f.checkpoint_dir, f.data_dir, f.out, f.recompute, f.title,
                           log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
