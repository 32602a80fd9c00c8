"""``python -m cogan_tf.bench --device_rows``: what the device itself gives, the rows to read the step rows
against on a GPU.

- a float32 ``n x n`` matmul timed by throughput: ``calls`` matmuls launched back to back and waited for once
  (one matmul with a wait per call measures the launch and the wait, on a GPU as long as the matmul);
- each with TF32 off (float32, the default of every run here) and on (``--tf32``); on a CPU the two are the
  same arithmetic, on Ampere and later GPUs TF32 rounds the inputs to 10-bit mantissas;
- the device's memory: its size, and TensorFlow's allocator peak over these rows.
"""

from __future__ import annotations

import statistics
import time
from typing import Dict, List, Sequence

from cogan_tf.bench.machine import compute_device, sync, tf_memory_info

SIZES = (1024, 2048, 4096)


def matmul_throughput(n: int, calls: int, repeats: int, tf32: bool) -> Dict[str, object]:
    """``repeats`` timed blocks of ``calls`` chained ``n x n`` float32 matmuls, one wait per block."""
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(tf32)
    a = tf.random.stateless_normal([n, n], seed=[1, 2]) / n ** 0.5
    b = tf.random.stateless_normal([n, n], seed=[3, 4]) / n ** 0.5

    @tf.function
    def block():
        x = a
        for _ in range(calls):  # chained, so none can be skipped; scaled to keep the values finite
            x = tf.matmul(x, b)
        return tf.reduce_sum(x)

    sync(block())  # traces and warms up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(block())
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"n": n, "calls": calls, "tf32": tf32, "median_s": med, "per_call_ms": med / calls * 1e3,
            "tflops": 2 * n ** 3 * calls / med / 1e12}


def run(sizes: Sequence[int] = SIZES, calls: int = 50, repeats: int = 5) -> Dict[str, object]:
    """The device rows: matmul throughput at each size with TF32 off and on, and the device's memory."""
    import tensorflow as tf

    from cogan_tf import device

    was = tf.config.experimental.tensor_float_32_execution_enabled()
    tf_memory_info(reset=True)
    rows: List[Dict[str, object]] = []
    try:
        for n in sizes:
            for tf32 in (False, True):
                rows.append(matmul_throughput(n, calls, repeats, tf32))
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(was)
    name = compute_device()
    total = device.cuda_total_memory(int(name.split(":")[1])) if name.startswith("GPU") else device.host_memory()
    return {"device": device.describe_device(name), "build": device.versions(), "rows": rows,
            "memory_total_bytes": total, "tf_memory": tf_memory_info()}


def format_rows(result: Dict[str, object]) -> str:
    lines = [f"device: {result['device']}; {result['build']}",
             f"{'matmul n':>9}{'calls':>7}{'TF32':>6}{'ms/call':>10}{'TFLOP/s':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['n']:>9}{r['calls']:>7}{'on' if r['tf32'] else 'off':>6}{r['per_call_ms']:>10.3f}"
                     f"{r['tflops']:>9.2f}")
    total, mem = result["memory_total_bytes"], result["tf_memory"] or {}
    lines.append(f"memory: {'unknown' if total is None else f'{total / 2 ** 30:.1f} GiB'} on the device; TensorFlow's "
                 f"allocator peak over these rows {mem.get('peak', 0) / 2 ** 20:.0f} MiB")
    return "\n".join(lines)
