"""The benchmark behind ``python -m cogan_tf.bench``: how fast the training steps run on this machine, and how close to its limit.

One run measures:

* the machine's float32 matmul rate (GFLOP/s): a large square matmul in TensorFlow, median of several;
* for each model at its default batch size (cogan 128, vanilla 512, clustergan 100), on random uint8 data
  kept on the device (no dataset, no input pipeline): training steps/s and images/s after warm-up (tracing
  and compilation excluded, reported apart), the FLOPs of one training step counted analytically from the
  layer shapes (:func:`step_flops`), the same count read off TensorFlow's own per-op FLOP statistics of the
  step's graph (:func:`profiler_flops`, the cross-check), the achieved GFLOP/s and its ratio to the matmul
  rate, and the peak resident memory;
* the "straightforward" CoGAN step as the baseline (:func:`straightforward_cogan_step`: G1 and G2 each
  computed on their own, the shared trunk twice, in a tf.function without XLA, as the original graph
  did), and the ratio of the port's step to it;
* ClusterGAN's ``--recipe paper`` (batch 64, WGAN-GP critic): its critic update and its G+E update, each
  timed on its own (:func:`clustergan_paper_rows`), and on request the whole 1:5 cycle and the two
  updates under bfloat16, with Keras's own layer gradients, or under XLA.

It prints a table and writes the numbers as JSON (atomically). ``docs/PERFORMANCE.md`` holds the latest
table. Timings on a shared machine are noisy: the load average at start and end is recorded with them.

The rows and their timing: :mod:`cogan_tf.bench.rows`; the steps they time: :mod:`cogan_tf.bench.steps`; the FLOP
model: :mod:`cogan_tf.bench.flops`; the machine's measurements: :mod:`cogan_tf.bench.machine`; the table:
:mod:`cogan_tf.bench.report`.
"""
