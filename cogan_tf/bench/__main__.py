"""python -m cogan_tf.bench: how fast the training steps run on this machine, and how close to its limit
(see :mod:`cogan_tf.bench` for what one run measures; docs/PERFORMANCE.md holds the latest table).

The flags are defined only when this runs as a program (:func:`define_flags`), and refused before
TensorFlow starts.
"""

import json

from absl import flags

from cogan_tf import cli, fileio
from cogan_tf.bench.report import format_table
from cogan_tf.bench.rows import ALL_MODELS, CLUSTERGAN_VARIANTS, COGAN_VARIANTS, run
from cogan_tf.errors import UsageError

MAX_BATCH = 8192
MAX_MATMUL_N = 8192


def define_flags() -> None:
    flags.DEFINE_list("models", list(ALL_MODELS), "Models to time; a model whose code is not there is skipped "
                      "(and listed as skipped) [cogan,vanilla,clustergan]")
    flags.DEFINE_list("cogan_variants", ["straightforward"],
                      "Extra CoGAN rows beside the port's own step (port): straightforward (the original graph's "
                      "step, the baseline), recompute (the port's step before the speed levers), unfused_heads / "
                      "no_reuse / deconv_heads / unfused_bn (the port's step without one lever); dense_matmul_grad / "
                      "fused_scalar_bn / stem_deconv_grad (the port's step without one of its written gradients: "
                      "the dense layers' input gradients as MatMul, Q2's scalar statistics as the fused op over one "
                      "channel, D's stem input gradients as Conv2DBackpropInput), plain_grads (without all three); "
                      "tf_prelu / tf_bn_prelu (the port's step without one of its XLA clusters: the PReLUs, Q2's "
                      "BatchNorm with the PReLU after it), plain_elementwise (without both), plain_ops (without the "
                      "three written gradients, the two clusters and TF1's Adam: Keras's ops and Adam throughout); "
                      "bfloat16 / float16 "
                      "(the port's step under --mixed_precision), xla (the port's step under XLA), loop (the "
                      "port's step in the real training loop), bn_per_feature (the port's step with per-feature "
                      "BatchNorm statistics instead of the original's scalar ones, quirk Q2); the paper's network "
                      "(--recipe paper, docs/PERFORMANCE.md): paper (its step), paper_plain (its step with every "
                      "layer's plain ops, before the speed levers), paper_deconv (G's first transposed convolution "
                      "as TensorFlow's op instead of a matmul), paper_tf_prelu (its PReLUs' written gradients as "
                      "TensorFlow's ops instead of XLA clusters), paper_xla (its step under XLA), conditional (the "
                      "conditional GAN's step, --recipe conditional); torch_eager (the faithful CoGAN step written "
                      "in plain PyTorch eager, the peer: needs PyTorch, not a dependency) [straightforward]")
    flags.DEFINE_list("clustergan_variants", ["paper"],
                      "ClusterGAN --recipe paper rows beside the original recipe's step (port), at the recipe's batch "
                      "64: paper (its critic update and its G+E update, each timed on its own: paper_critic, "
                      "paper_ge), paper_cycle (the training loop's step over whole cycles of 5 critic updates and "
                      "one G+E update), paper_bfloat16 (the two updates under --mixed_precision bfloat16), "
                      "paper_plain (the two updates with Keras's own layer gradients instead of the written ones), "
                      "paper_xla (the two updates compiled with XLA); empty (--clustergan_variants=): no paper rows "
                      "[paper]")
    flags.DEFINE_boolean("keras_adam", False, "Also time each model's own step with Keras's Adam arithmetic "
                         "(keras_adam rows; --adam keras) beside TF1's ApplyAdam, the default [False]")
    flags.DEFINE_integer("steps", 20, "Timed steps per row (after warm-up); the step time is their median [20]")
    flags.DEFINE_integer("warmup", 3, "Untimed steps first (the first traces and compiles) [3]")
    flags.DEFINE_integer("batch_size", 0, f"Batch size for every model, up to {MAX_BATCH} (16 times the largest "
                         "default; a step's memory grows with it); 0: each model's default [0]")
    flags.DEFINE_string("out", "bench.json", "Where to write the JSON results [bench.json]")
    flags.DEFINE_boolean("jit_compile", False, "Compile the models' own steps with XLA, as training's --jit_compile "
                         "(the straightforward baseline never is) [False]")
    flags.DEFINE_integer("matmul_n", 2048, f"Size of the square float32 matmul measuring the machine, up to {MAX_MATMUL_N} "
                         "(256 MiB a matrix, tens of seconds a matmul on a CPU) [2048]")
    flags.DEFINE_integer("matmul_repeats", 10, "Timed matmuls (median) [10]")
    flags.DEFINE_boolean("tf32", False, "The step rows and the reference matmul with TF32 (GPUs from Ampere on) "
                         "[False: float32, as training without --tf32]")
    flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads; 0: TensorFlow's default [0]")
    flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads; 0: TensorFlow's default [0]")
    flags.DEFINE_boolean("profile", True, "Cross-check the analytic FLOPs with TensorFlow's per-op statistics [True]")
    flags.DEFINE_boolean("quick", False, "A seconds-long smoke run: batch 4, 1 warm-up and 2 timed steps, "
                         "a 256 matmul (numbers meaningless; for tests) [False]")
    flags.DEFINE_boolean("device_rows", False, "Only the device's rows (cogan_tf/bench/device_rows.py): float32 matmuls "
                         "of 1024, 2048 and 4096 by throughput over --matmul_repeats blocks of 50 chained calls, "
                         "TF32 off and on, and the device's memory; --quick: 256 and 512, 5 calls [False]")


def validate(f) -> None:
    """One-line refusals, before TensorFlow starts (a negative thread count aborts it in C++)."""
    def bad(flag, why):
        raise UsageError(f"--{flag}={getattr(f, flag)}: {why}")

    for flag, low in (("steps", 1), ("warmup", 0), ("batch_size", 0), ("matmul_n", 1), ("matmul_repeats", 1),
                      ("intra_op_threads", 0), ("inter_op_threads", 0)):
        if getattr(f, flag) < low:
            bad(flag, f"must be {low} or more")
    for flag, high in (("batch_size", MAX_BATCH), ("matmul_n", MAX_MATMUL_N)):
        if getattr(f, flag) > high:
            bad(flag, f"must be {high} or less (see --help)")
    why = fileio.unwritable_file(f.out) if f.out else "no file given"
    if why:  # found now, not after minutes of timing
        bad("out", f"{why}; give a file path in a writable folder")
    unknown = [m for m in f.models if m not in ALL_MODELS]
    if unknown or not f.models:
        raise UsageError(f"--models={','.join(f.models)}: choose from {', '.join(ALL_MODELS)}")
    unknown = [v for v in f.cogan_variants if v not in COGAN_VARIANTS]
    if unknown:
        raise UsageError(f"--cogan_variants={','.join(f.cogan_variants)}: {', '.join(unknown)} unknown; choose from "
                         f"{', '.join(COGAN_VARIANTS)}")
    if "torch_eager" in f.cogan_variants and "cogan" in f.models:
        from cogan_tf.bench import torch_peer

        if not torch_peer.available():
            raise UsageError(f"--cogan_variants=torch_eager {torch_peer.MISSING}")
    unknown = [v for v in f.clustergan_variants if v not in CLUSTERGAN_VARIANTS]
    if unknown:
        raise UsageError(f"--clustergan_variants={','.join(f.clustergan_variants)}: {', '.join(unknown)} unknown; "
                         f"choose from {', '.join(CLUSTERGAN_VARIANTS)}")


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    validate(FLAGS)
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(FLAGS.tf32)  # TensorFlow's own default is on
    if FLAGS.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    if FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    quick = FLAGS.quick
    if FLAGS.device_rows:
        from cogan_tf.bench import device_rows

        result = device_rows.run(sizes=(256, 512) if quick else device_rows.SIZES, calls=5 if quick else 50,
                                 repeats=2 if quick else FLAGS.matmul_repeats)
        print(device_rows.format_rows(result))
        fileio.atomic_write_text(FLAGS.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"\nwrote {FLAGS.out}")
        return 0
    result = run(FLAGS.models, FLAGS.cogan_variants,
                 steps=2 if quick else FLAGS.steps, warmup=2 if quick else FLAGS.warmup,
                 batch_size=4 if quick else FLAGS.batch_size, jit_compile=FLAGS.jit_compile,
                 matmul_n=256 if quick else FLAGS.matmul_n, matmul_repeats=2 if quick else FLAGS.matmul_repeats,
                 profile=FLAGS.profile,
                 clustergan_variants=FLAGS.clustergan_variants, keras_adam=FLAGS.keras_adam)
    result["quick"] = quick
    print()
    print(format_table(result))
    fileio.atomic_write_text(FLAGS.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {FLAGS.out}")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
