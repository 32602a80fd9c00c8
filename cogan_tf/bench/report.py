"""The benchmark's table: a run's result (:func:`cogan_tf.bench.rows.run`) as the text ``python -m cogan_tf.bench`` prints."""

from __future__ import annotations

VARIANT_WIDTH = 25


def format_table(result: dict) -> str:
    mm = result["matmul"]
    lines = [f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, TF "
             f"{result['machine']['tensorflow']}; load average {result['loadavg_start']} -> {result['loadavg_end']}",
             f"steps on: {result['machine'].get('device', 'CPU')}; TF32 {'on' if result['machine'].get('tf32') else 'off'}",
             f"float32 matmul {mm['n']}x{mm['n']}: {mm['gflops']:.1f} GFLOP/s (median of {mm['repeats']} blocks of "
             f"{mm.get('calls', 1)}, interleaved with the rows' steps)",
             ""]
    head = (f"{'model':<11}{'variant':<{VARIANT_WIDTH}}{'batch':>6}{'step ms':>9}{'steps/s':>9}{'img/s':>9}"
            f"{'GFLOP/step':>11}{'TF count':>9}{'GFLOP/s':>9}{'%matmul':>8}{'RSS MB':>8}{'TF MB':>7}")
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        match = r.get("flops_check", {}).get("match")
        check = {True: "same", False: "DIFF", None: "n/a"}[match]
        lines.append(f"{r['model']:<11}{r['variant']:<{VARIANT_WIDTH}}{r['batch']:>6}{r['step_ms']:>9.1f}"
                     f"{r['steps_per_s']:>9.2f}{r['images_per_s']:>9.0f}{r['flops_analytic'] / 1e9:>11.2f}{check:>9}"
                     f"{r['gflops_per_s']:>9.1f}{100 * r['fraction_of_matmul']:>7.0f}%{r['peak_rss_mb']:>8.0f}"
                     f"{(r.get('tf_peak_mb') or float('nan')):>7.0f}")
    lines.append("")
    lines.append("GFLOP/step: analytic matmul/conv FLOPs of one step (ClusterGAN port and paper_cycle: averaged over "
                 "the 1:5 cycle; paper_critic, paper_ge: one update); TF count: TensorFlow's own count of the same ops "
                 "on the step's graph agrees (same) or not (DIFF)")
    lines.append("step ms: median over the timed steps (rows timed round-robin; loop: on its own); RSS MB: the "
                 "process's peak resident memory during the row's warm-up (all models built by then); TF MB: "
                 "TensorFlow's allocator peak for the row alone on the device the steps run on (weights, optimizer slots, "
                 "activations; a GPU's memory on a GPU)")
    for k, v in result["ratios"].items():
        lines.append(f"{k}: {v:.2f}x")
    for m, why in result["skipped"].items():
        lines.append(f"skipped {m}: {why}")
    return "\n".join(lines)
