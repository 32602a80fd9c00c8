"""``python -m cogan_tf.bench`` (cogan_tf/bench/__init__.py, __main__.py), the benchmark as a program: --quick runs
writing their JSON and table, every row's FLOP count agreeing with TensorFlow's, and bad flags or a bad --out
refused in one line before TensorFlow starts. No timing is asserted. Its modules have their own tests:
test_flops.py, test_bench_rows.py, test_bench_steps.py, test_bench_report.py, test_machine.py, test_trace.py,
test_torch_peer.py, test_device_rows.py."""

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT, out_cases, without_tensorflow


def quick_run(tmp_path, *args):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", "--quick", "--out", str(out), *args],
                       cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr[-3000:]
    return r, json.loads(out.read_text())


@pytest.mark.slow  # a TensorFlow start and four traced, timed and profiled steps (~17 s); the FLOP model and
# TensorFlow's count are checked in test_flops.py, the flags below
def test_quick_run_writes_json(tmp_path):
    r, res = quick_run(tmp_path)
    for key in ("command", "machine", "matmul", "rows", "ratios", "skipped", "loadavg_start", "loadavg_end"):
        assert key in res
    assert res["matmul"]["gflops"] > 0
    assert [(row["model"], row["variant"]) for row in res["rows"]] == [
        ("cogan", "port"), ("cogan", "straightforward"), ("vanilla", "port"), ("clustergan", "port"),
        ("clustergan", "paper_critic"), ("clustergan", "paper_ge")]
    assert res["skipped"] == {}
    for row in res["rows"]:
        for key in ("steps_per_s", "images_per_s", "step_ms", "flops_analytic", "gflops_per_s",
                    "fraction_of_matmul", "peak_rss_mb", "first_call_s", "profiler", "flops_check"):
            assert key in row, key
        assert row["batch"] == 4 and row["steps_per_s"] > 0 and row["flops_analytic"] > 0
        # The cross-check: TensorFlow counts the same matmul/conv FLOPs on the step's graph.
        assert row["flops_check"]["match"], row["flops_check"]
    assert res["rows"][3]["cycle"] == 5  # ClusterGAN: timed over whole 1:5 cycles
    assert res["rows"][4]["cycle"] == res["rows"][5]["cycle"] == 1  # the paper's two updates, each on its own
    assert list(res["ratios"]) == ["cogan port / straightforward (steps/s)"]
    assert "straightforward" in r.stdout and "GFLOP/s" in r.stdout


@pytest.mark.slow  # a second TensorFlow start and five more traced steps (~25 s); the rows' code is tested in
# test_flops.py and test_bench_rows.py
def test_quick_run_of_the_lever_and_precision_rows(tmp_path):
    """The rows that isolate a lever or time --mixed_precision run, and TensorFlow's FLOP count agrees
    with the analytic one for each (the sub-pixel heads counted apart only where the row uses them)."""
    _, res = quick_run(tmp_path, "--models", "cogan", "--cogan_variants",
                       "deconv_heads,unfused_bn,no_reuse,bfloat16,bn_per_feature,dense_matmul_grad,fused_scalar_bn,"
                       "stem_deconv_grad,plain_grads")
    rows = {row["variant"]: row for row in res["rows"]}
    assert set(rows) == {"port", "bfloat16", "no_reuse", "deconv_heads", "unfused_bn", "bn_per_feature",
                         "dense_matmul_grad", "fused_scalar_bn", "stem_deconv_grad", "plain_grads"}
    for name, row in rows.items():
        assert row["flops_check"]["match"], (name, row["flops_check"])
        assert row["steps_per_s"] > 0
    # Same useful work with or without the sub-pixel heads; TensorFlow sees the zero taps only with them.
    assert rows["deconv_heads"]["flops_analytic"] == rows["port"]["flops_analytic"]
    tf_port = rows["port"]["flops_check"]["tensorflow"]["step"]
    assert tf_port > rows["deconv_heads"]["flops_check"]["tensorflow"]["step"]
    # The sub-pixel stem gradients too: the layers as first written and the rows without that lever have none.
    tf_plain_stem = rows["stem_deconv_grad"]["flops_check"]["tensorflow"]["step"]
    assert tf_plain_stem < tf_port
    assert rows["unfused_bn"]["flops_check"]["tensorflow"]["step"] == rows["plain_grads"]["flops_check"][
        "tensorflow"]["step"] == tf_plain_stem
    # Q2's scalar statistics and the dense layers' written gradients change no count.
    for name in ("bn_per_feature", "fused_scalar_bn", "dense_matmul_grad"):
        assert rows[name]["flops_check"]["tensorflow"]["step"] == tf_port, name
    assert set(res["ratios"]) == {"cogan port / dense_matmul_grad (steps/s)", "cogan port / fused_scalar_bn (steps/s)",
                                  "cogan port / stem_deconv_grad (steps/s)", "cogan port / plain_grads (steps/s)"}


@pytest.mark.slow  # a third TensorFlow start and seven more traced steps (~30 s); each row's step is tested in
# test_flops.py
def test_quick_run_of_the_clustergan_paper_rows(tmp_path):
    """All the paper recipe's rows in a --quick run: TensorFlow's count agrees with the analytic one for
    each, the 1:5 cycle is five critic updates and one G+E update per five steps, and the bfloat16 rows
    get their ratio to the float32 ones."""
    r, res = quick_run(tmp_path, "--models", "clustergan", "--clustergan_variants",
                       "paper,paper_cycle,paper_bfloat16,paper_plain")
    rows = {row["variant"]: row for row in res["rows"]}
    assert list(rows) == ["port", "paper_critic", "paper_ge", "paper_critic_bf16", "paper_ge_bf16",
                          "paper_critic_plain", "paper_ge_plain", "paper_cycle"]
    for name, row in rows.items():
        assert row["flops_check"]["match"], (name, row["flops_check"])
        assert row["steps_per_s"] > 0 and row["batch"] == 4
    assert rows["paper_cycle"]["cycle"] == 5
    per_step = (5 * rows["paper_critic"]["flops_analytic"] + rows["paper_ge"]["flops_analytic"]) / 5
    assert rows["paper_cycle"]["flops_analytic"] == pytest.approx(per_step, rel=1e-12)
    # The written gradients change no useful work; TensorFlow sees the zero passes of the plain critic.
    assert rows["paper_critic_plain"]["flops_analytic"] == rows["paper_critic"]["flops_analytic"]
    assert (rows["paper_critic_plain"]["flops_check"]["tensorflow"]["step"]
            > rows["paper_critic"]["flops_check"]["tensorflow"]["step"])
    assert set(res["ratios"]) == {"clustergan paper_critic_bf16 / paper_critic (steps/s)",
                                  "clustergan paper_ge_bf16 / paper_ge (steps/s)",
                                  "clustergan paper_critic / paper_critic_plain (steps/s)",
                                  "clustergan paper_ge / paper_ge_plain (steps/s)"}
    assert "paper_critic_bf16" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "error: --steps=0: must be 1 or more"),
    (["--batch_size=-4"], "error: --batch_size=-4: must be 0 or more"),
    (["--models", "foo"], "error: --models=foo: choose from cogan, vanilla, clustergan"),
    (["--matmul_n=-1"], "error: --matmul_n=-1: must be 1 or more"),
    (["--intra_op_threads=-3"], "error: --intra_op_threads=-3: must be 0 or more"),
    (["--cogan_variants", "port,fast"], "error: --cogan_variants=port,fast: port, fast unknown; choose from "
     "straightforward, recompute, unfused_heads, no_reuse, deconv_heads, unfused_bn, dense_matmul_grad, "
     "fused_scalar_bn, stem_deconv_grad, plain_grads, tf_prelu, tf_bn_prelu, plain_elementwise, "
     "plain_ops, xla, bfloat16, float16, loop, "
     "bn_per_feature, paper, paper_plain, paper_deconv, paper_tf_prelu, paper_xla, conditional, torch_eager"),
    (["--clustergan_variants", "paper,paper_jit"], "error: --clustergan_variants=paper,paper_jit: paper_jit "
     "unknown; choose from paper, paper_cycle, paper_bfloat16, paper_plain, paper_xla"),
    (["--batch_size", "100000"], "error: --batch_size=100000: must be 8192 or less (see --help)"),
    (["--matmul_n", "100000"], "error: --matmul_n=100000: must be 8192 or less (see --help)"),
])
def test_bad_flags_refused_in_one_line_before_tensorflow(tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", "--out", str(tmp_path / "b.json")] + args,
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=without_tensorflow(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "b.json").exists()


def test_a_bad_out_is_refused_before_the_timing(tmp_path):
    shell = without_tensorflow(tmp_path)
    for args, message in out_cases(tmp_path) + [(["--out="], "--out=: no file given; give a file path in a "
                                                              "writable folder")]:
        r = subprocess.run([sys.executable, "-m", "cogan_tf.bench", *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env=shell)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert r.stderr.startswith(f"error: {message}"), (args, r.stderr)
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


