"""python -m cogan_tf.launch --workers N -- <main.py flags>: a multi-worker run on this machine.

Starts N ``main.py --strategy multiworker`` processes, each with the TF_CONFIG of one worker of a
cluster on free local ports (worker 0 is the chief), and prefixes every line they print with
``[worker i]``. Ctrl-C and SIGTERM are passed on to every worker once per signal received (the
workers run in their own process group, so a terminal's Ctrl-C reaches them only through here):
the first stops them all after the same step with a checkpoint, a second ends them at once. The
launcher exits with the status of the first worker that fails (a worker killed by a signal: 128 +
its number), after giving the others ``--grace_seconds`` to stop on their own; then it kills them.

On several machines there is no launcher: each machine runs main.py with its own TF_CONFIG (README).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, List, Mapping, Optional, Sequence

from cogan_tf import cluster, device

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as every program of the package
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def parse(argv: Sequence[str]):
    p = _Parser(prog="python -m cogan_tf.launch", description=__doc__.split("\n\n")[1].replace("``", ""),
                usage="python -m cogan_tf.launch --workers N [options] -- <main.py flags>")
    p.add_argument("--workers", type=int, required=True, metavar="N", help="worker processes to start (at least 1)")
    p.add_argument("--threads_per_worker", type=int, default=0, metavar="N",
                   help="TensorFlow's intra-op and inter-op threads in each worker (0: TensorFlow's default, "
                        "sized from all cores) [0]")
    p.add_argument("--grace_seconds", type=float, default=60.0, metavar="S",
                   help="after a worker fails, how long the others get to stop on their own before they are "
                        "killed [60]")
    argv = list(argv)
    ours, flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = p.parse_args(ours)
    if args.workers < 1:
        p.error(f"--workers {args.workers}: must be at least 1")
    if args.threads_per_worker < 0:
        p.error(f"--threads_per_worker {args.threads_per_worker}: must be 0 or more")
    strategies = [f.split("=", 1)[1] if "=" in f else (flags[i + 1] if i + 1 < len(flags) else "")
                  for i, f in enumerate(flags) if f.split("=", 1)[0] == "--strategy"]
    if any(s != "multiworker" for s in strategies):
        p.error(f"--strategy {strategies[-1]}: the workers train with --strategy multiworker; drop the flag")
    args.flags = flags if strategies else flags + ["--strategy=multiworker"]
    return args


def free_ports(n: int) -> List[int]:
    """``n`` distinct ports free on this machine now (the kernel's choice; held together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("localhost", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def worker_env(base: dict, addresses: Sequence[str], index: int, threads: int) -> dict:
    """The environment of worker ``index``: its TF_CONFIG, this package first on the path, unbuffered
    output (lines arrive as they are printed), and the thread counts if given."""
    env = dict(base)
    env["TF_CONFIG"] = cluster.tf_config(addresses, index)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT] + ([base["PYTHONPATH"]] if base.get("PYTHONPATH") else []))
    env["PYTHONUNBUFFERED"] = "1"
    if threads:
        env["TF_NUM_INTRAOP_THREADS"] = env["TF_NUM_INTEROP_THREADS"] = str(threads)
    return env


def gpu_env(base: Mapping[str, str], index: int, workers: int, proc_dir: str = device.NVIDIA_PROC) -> Dict[str, str]:
    """Worker ``index``'s own GPUs, as environment variables: the GPUs the launcher may use (its
    CUDA_VISIBLE_DEVICES, else every GPU the NVIDIA driver reports) dealt out in equal contiguous shares
    (every worker needs as many replicas; what does not divide evenly stays unused), or with fewer GPUs
    than workers worker i on GPU i mod G; and TF_FORCE_GPU_ALLOW_GROWTH, so that workers sharing a GPU
    each take memory as they need it instead of all of it. Nothing on a machine without GPUs."""
    listed = base.get("CUDA_VISIBLE_DEVICES")
    gpus = ([g.strip() for g in listed.split(",") if g.strip()] if listed is not None
            else [str(i) for i in range(device.nvidia_gpus(proc_dir))])
    if not gpus or gpus == ["-1"]:
        return {}
    per = len(gpus) // workers
    mine = gpus[index * per:(index + 1) * per] if per else [gpus[index % len(gpus)]]
    return {"CUDA_VISIBLE_DEVICES": ",".join(mine), "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def exit_status(returncode: int) -> int:
    """A child's exit status as a shell reports it: killed by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def _stop_with_parent() -> None:
    """In the worker, before it starts: SIGTERM when the launcher dies however it dies (Linux), so a killed
    launcher leaves no worker training on its own; the workers then stop together with a checkpoint."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pump(stream, out, prefix: str, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            out.flush()
    stream.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    addresses = [f"localhost:{p}" for p in free_ports(args.workers)]
    command = [sys.executable, "-m", "cogan_tf", "main"] + args.flags
    lock = threading.Lock()
    procs, pumps = [], []

    def forward(signum, frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, forward)
    for i in range(args.workers):
        # Its own process group: a terminal's Ctrl-C reaches the worker once, forwarded, not twice.
        env = {**worker_env(os.environ, addresses, i, args.threads_per_worker), **gpu_env(os.environ, i, args.workers)}
        procs.append(subprocess.Popen(command, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                      start_new_session=True, preexec_fn=_stop_with_parent))
    for i, p in enumerate(procs):  # threads only once every worker is started (preexec_fn and threads do not mix)
        for stream, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
            t = threading.Thread(target=_pump, args=(stream, out, f"[worker {i}] ", lock), daemon=True)
            t.start()
            pumps.append(t)
    with lock:
        print(f" [*] {args.workers} workers on {', '.join(addresses)}: pids "
              + ", ".join(str(p.pid) for p in procs), file=sys.stderr, flush=True)

    status, failed_at = 0, None
    while any(p.poll() is None for p in procs):
        if failed_at is None:
            failure = next((i for i, p in enumerate(procs) if p.poll() not in (None, 0)), None)
            if failure is not None:
                status, failed_at = exit_status(procs[failure].returncode), time.time()
                if any(p.poll() is None for p in procs):
                    with lock:
                        print(f" [!] worker {failure} exited with status {status}: the others get "
                              f"{args.grace_seconds:g} s to stop", file=sys.stderr, flush=True)
        elif time.time() - failed_at > args.grace_seconds:
            for i, p in enumerate(procs):
                if p.poll() is None:
                    p.kill()
                    with lock:
                        print(f" [!] killed worker {i}, still running {args.grace_seconds:g} s after the first failure",
                              file=sys.stderr, flush=True)
        time.sleep(0.1)
    for t in pumps:
        t.join()
    if failed_at is None:
        status = next((exit_status(p.returncode) for p in procs if p.returncode), 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
