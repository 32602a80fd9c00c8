"""cogan_tf/bench/trace.py, where a benchmark row's step spends its time (``python tools/trace_step.py``): the
traced ops matched to the step's graph, their FLOPs adding up to TensorFlow's count of the step, each op put in
its kind, the matmuls on exactly-zero gradients marked; and the tool end to end in a real process."""

import os
import subprocess
import sys

import pytest

from cogan_tf.bench import rows as bench_rows, steps as step_lib
from cogan_tf.bench import flops
from tests.conftest import ROOT


def test_trace_finds_the_matmuls_on_zero_gradients():
    """tools/trace_step.py (cogan_tf/bench/trace.py) marks the matmuls and convolutions whose gradient operand
    is exactly zero: those the plain critic's graph runs (LeakyReLU's zero second derivative backpropagated
    through D on the interpolates; as many as the FLOP model's zero passes), none in the port's."""
    import tensorflow as tf
    from cogan_tf.bench import trace

    gan, inputs = bench_rows.make_model("clustergan", 2, False, model_overrides=bench_rows.PAPER)
    found = {}
    for row in ("paper_critic", "paper_critic_plain"):
        graph = tf.function(step_lib.STEPS[row](gan)).get_concrete_function(*inputs).graph
        zero = trace.zero_ops(graph)
        found[row] = sorted(op.type for op in graph.get_operations()
                            if op.name in zero and op.type in flops.MATMUL_OPS)
    assert found["paper_critic"] == []
    # h2's weight and input gradients, c1's and c0's filter and input gradients; c0's input gradient (into
    # x_hat, no variable) is in the graph but nothing uses it: pruned, so neither TensorFlow's count of
    # the ops that run nor the FLOP model's zero passes has it.
    assert found["paper_critic_plain"] == ["Conv2DBackpropFilter", "Conv2DBackpropFilter", "Conv2DBackpropInput",
                                           "Conv2DBackpropInput", "MatMul", "MatMul"]
    passes = flops.clustergan_step_counts(gan.model_cfg, zero_path=True)["d"]
    assert sum(passes.zero_dx.values()) + sum(passes.zero_dw.values()) == 5


@pytest.mark.parametrize("variant", ["port", "plain_grads", "plain_elementwise"])
def test_trace_of_a_row_counts_what_tensorflow_counts(variant):
    """A traced CoGAN step (batch 4, one call): every matmul and convolution that ran, oneDNN's fused ones
    included, found in the graph, their FLOPs adding up to TensorFlow's count of the step (the benchmark's
    cross-check); the kinds adding up to the ops' time; the dense input gradients a kind of their own, as
    BatchMatMulV2 (the port's) or MatMul with a transposed operand (the plain one), never a forward matmul;
    the sub-pixel stem gradients (Conv2D ops of a custom gradient, outside the tape's name scope) as input
    gradients, not as forward convolutions."""
    from cogan_tf.bench import trace

    t = trace.trace_step("cogan", variant, batch=4, warmup=1, calls=1, matmul_n=0)
    row = trace.find_row("cogan", variant, 4)
    assert sum(o["flops"] for o in t.ops.values()) == row.parts["step"][0].flops(4, tf_convention=True)
    assert all(o["flops"] for o in t.ops.values() if trace.runs_matmul(o["kernel"]))
    kinds = {k["kind"]: k for k in t.kinds()}
    assert sum(k["ms"] for k in kinds.values()) == pytest.approx(t.total_ms)
    dense_dx = [o for o in t.ops.values() if o["kind"] == "dense input gradients (dy @ W^T)"]
    assert {("BatchMatMul" in o["kernel"]) for o in dense_dx} == {variant != "plain_grads"}
    # D's h2 and h3 in both domains' G-update passes and in the D update's fakes and reals: 2 x (2 + 4) per step,
    # and the two G updates' D passes.
    assert len(dense_dx) >= 8
    assert "Adam updates" in kinds and "BatchNorm" in kinds and kinds["conv filter gradients"]["flops"] > 0
    # The PReLUs and Q2's BatchNorms are XLA clusters, or (plain_elementwise) their written gradients' ops, which
    # the trace finds by their name scopes.
    written = [o for o in t.ops.values() if "prelu_grad" in o["name"] or "batchnorm_grad" in o["name"]]
    assert bool(written) == (variant == "plain_elementwise")
    assert all(o["kind"] == ("BatchNorm" if "batchnorm_grad" in o["name"] else "activations (PReLU, LeakyReLU)")
               for o in written)
    # D's stems, 2 convolutions x 2 domains x 4 D passes (real and fake in the D update, the two G updates),
    # and the sub-pixel heads' forward pass of the two G forward passes.
    assert len([o for o in t.ops.values() if o["kind"] == "conv forward"]) == 16 + 2
    # The XLA clusters (the PReLUs, Q2's BatchNorm with its PReLU) are timed as runs of compiled clusters.
    assert ("XLA clusters (fused activations and BatchNorm)" in kinds) == (variant != "plain_elementwise")
    text = trace.format_trace(t)
    assert text.count("\n| ") == len(kinds) + 3  # the header, each kind, the two totals
    with pytest.raises(ValueError, match="cogan:loop: no such row"):
        trace.find_row("cogan", "loop")


def test_trace_tool_runs_a_row_in_a_real_process(tmp_path):
    """tools/trace_step.py end to end (it set TensorFlow's inter-op threads after TensorFlow had started, which
    raised, so every run with the default flags ended in a traceback): a CoGAN row at batch 2, one call."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "trace_step.py"), "--rows", "cogan:port",
                        "--batch", "2", "--calls", "1", "--warmup", "1", "--matmul_n", "64", "--top", "3"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "cogan:port (batch 2)" in r.stdout and "| op kind | ms | share | GFLOP | GFLOP/s | of matmul |" in r.stdout
    assert "| dense input gradients (dy @ W^T) |" in r.stdout and "the 3 longest ops" in r.stdout
