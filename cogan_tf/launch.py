"""python -m cogan_tf.launch --workers N -- <main.py flags>: a multi-worker run on this machine.

Checks the main.py flags once (a refusal is one line, not one per worker), then starts N ``main.py
--strategy multiworker`` processes, each with the TF_CONFIG of one worker of a cluster on free local
ports (worker 0 is the chief), and prefixes every line they print with ``[worker i]``. Ctrl-C, SIGTERM
and SIGHUP are passed on to every worker once per signal received (the workers run in their own process
group, so a terminal's Ctrl-C reaches them only through here): the first stops them all after the same
step with a checkpoint, a second ends them at once. A worker that refuses to start (status 2, its one
line) ends the others at once. Otherwise the launcher exits with the status of the first worker that
fails (a worker killed by a signal: 128 + its number), after giving the others ``--grace_seconds`` to
stop on their own; then it kills them. If the launcher is killed, or its own output closes, each
worker's output pipe closes, and the workers stop after the same step with a checkpoint.

On several machines there is no launcher: each machine runs main.py with its own TF_CONFIG (README).
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, List, Mapping, Optional, Sequence

from cogan_tf import device, tf_config

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The program each worker runs, followed by the main.py flags.
WORKER_COMMAND = (sys.executable, "-m", "cogan_tf", "main")
# A worker's exit status when it refused its flags, TF_CONFIG or folders in one line, before training.
REFUSED = 2
# What one worker needs at least: a TensorFlow process training the CoGAN holds ~0.8 GB resident here.
WORKER_MEMORY = 1 << 30
# File descriptors the launcher holds per worker (two pipes), and a margin for its own.
FDS_PER_WORKER, FDS_SPARE = 2, 32


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
    if not (math.isfinite(args.grace_seconds) and args.grace_seconds >= 0):
        p.error(f"--grace_seconds {args.grace_seconds:g}: must be a number of seconds, 0 or more")
    too_many = machine_limit(args.workers)
    if too_many:
        p.error(f"--workers {args.workers}: {too_many}")
    strategies = [f.split("=", 1)[1] if "=" in f else (flags[i + 1] if i + 1 < len(flags) else "")
                  for i, f in enumerate(flags) if f.split("=", 1)[0] == "--strategy"]
    if any(s != "multiworker" for s in strategies):
        p.error(f"--strategy {strategies[-1]}: the workers train with --strategy multiworker; drop the flag")
    args.flags = flags if strategies else flags + ["--strategy=multiworker"]
    return args


def machine_limit(workers: int, memory: Optional[int] = None, open_files: Optional[int] = None) -> Optional[str]:
    """Why this machine cannot hold ``workers`` workers, else None: each needs about
    :data:`WORKER_MEMORY` of memory, and the launcher two file descriptors."""
    memory = device.meminfo_bytes("MemAvailable") if memory is None else memory
    if memory is not None and workers * WORKER_MEMORY > memory:
        return (f"each worker is a TensorFlow process of about {WORKER_MEMORY >> 30} GB, and this machine has "
                f"{memory / (1 << 30):.1f} GB available: at most {max(1, memory // WORKER_MEMORY)} workers here")
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0] if open_files is None else open_files
    need = workers * FDS_PER_WORKER + FDS_SPARE
    if open_files != resource.RLIM_INFINITY and need > open_files:
        return f"needs {need} open files and the limit is {open_files}: raise it (ulimit -n) or start fewer workers"
    return None


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


def package_first(base: Mapping[str, str]) -> Dict[str, str]:
    """The environment ``base`` with the folder holding this package first on PYTHONPATH, so that a process
    started with it imports the same package as this one."""
    path = [PACKAGE_PARENT] + ([base["PYTHONPATH"]] if base.get("PYTHONPATH") else [])
    return dict(base, PYTHONPATH=os.pathsep.join(path))


def worker_env(base: dict, addresses: Sequence[str], index: int, threads: int) -> dict:
    """The environment of worker ``index``: its TF_CONFIG, this package first on the path, unbuffered
    output (lines arrive as they are printed), and the thread counts if given."""
    env = package_first(base)
    env["TF_CONFIG"] = tf_config.for_worker(addresses, index)
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
    """Copy a worker's lines to ``out``. If ``out`` is gone (the launcher's reader closed its pipe), close
    the worker's pipe too: the worker then stops after its step with a checkpoint, as one whose own
    output closed (cogan_tf.stops)."""
    for line in iter(stream.readline, ""):
        if not _say(prefix + line if line.endswith("\n") else prefix + line + "\n", out, lock):
            break
    stream.close()


def _say(text: str, out, lock: threading.Lock) -> bool:
    """Write ``text`` to ``out``; False if ``out`` is a closed pipe."""
    with lock:
        try:
            out.write(text)
            out.flush()
            return True
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                raise
            try:  # later writes, and the interpreter's last flush, go nowhere instead of failing
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, out.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
            return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ)
    refused = _refusal(args.flags, environ)
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return REFUSED
    addresses = [f"localhost:{p}" for p in free_ports(args.workers)]
    command = list(WORKER_COMMAND) + args.flags
    lock = threading.Lock()
    procs, pumps = [], []
    asked: List[int] = []  # the signals passed on to the workers

    def forward(signum, frame):
        asked.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, forward)
    for i in range(args.workers):
        # Its own process group: a terminal's Ctrl-C reaches the worker once, forwarded, not twice.
        env = {**worker_env(environ, addresses, i, args.threads_per_worker), **gpu_env(environ, i, args.workers)}
        procs.append(subprocess.Popen(command, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                      start_new_session=True, preexec_fn=_stop_with_parent))
    for i, p in enumerate(procs):  # threads only once every worker is started (preexec_fn and threads do not mix)
        for stream, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
            t = threading.Thread(target=_pump, args=(stream, out, f"[worker {i}] ", lock), daemon=True)
            t.start()
            pumps.append(t)
    _say(f" [*] {args.workers} workers on {', '.join(addresses)}: pids " + ", ".join(str(p.pid) for p in procs)
         + "\n", sys.stderr, lock)

    status, failed_at, killed = 0, None, set()
    while any(p.poll() is None for p in procs):
        if failed_at is None:
            failure = next((i for i, p in enumerate(procs) if p.poll() not in (None, 0)), None)
            if failure is not None:
                status, failed_at = exit_status(procs[failure].returncode), time.time()
                running = [i for i, p in enumerate(procs) if p.poll() is None]
                if status in (128 + s for s in asked):
                    pass  # the stop that was asked for: the others are stopping after the same step
                elif status == REFUSED and running:
                    _say(f" [!] worker {failure} refused to start (its line above): ending the others\n",
                         sys.stderr, lock)
                    for i in running:
                        procs[i].kill()
                elif running:
                    _say(f" [!] worker {failure} failed with status {status}: the others get "
                         f"{args.grace_seconds:g} s to stop\n", sys.stderr, lock)
        elif time.time() - failed_at > args.grace_seconds:
            for i, p in enumerate(procs):
                if p.poll() is None and i not in killed:  # a stopped process takes a moment to die
                    killed.add(i)
                    p.kill()
                    _say(f" [!] killed worker {i}, still running {args.grace_seconds:g} s after worker "
                         f"{failure} ended\n", sys.stderr, lock)
        time.sleep(0.1)
    for t in pumps:
        t.join()
    if failed_at is None:
        status = next((exit_status(p.returncode) for p in procs if p.returncode), 0)
    if asked and status == 128 + asked[0]:
        _say(f" [*] the workers stopped on {signal.Signals(asked[0]).name}, as asked (status {status}): "
             "run the same command to resume\n", sys.stderr, lock)
    return status


def _refusal(flags: Sequence[str], environ: dict) -> Optional[str]:
    """main.py's one-line refusal of ``flags`` (``main.py --check_only``, as the chief would meet it, without
    TensorFlow), else None."""
    env = {k: v for k, v in environ.items() if k != "TF_CONFIG"}  # the launcher's own is not the workers'
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT] + ([environ["PYTHONPATH"]] if environ.get("PYTHONPATH") else []))
    r = subprocess.run(list(WORKER_COMMAND) + list(flags) + ["--check_only"], env=env, capture_output=True, text=True)
    if r.returncode == 0:
        return None
    lines = r.stderr.strip().splitlines()
    return (lines[-1] if lines else f"main.py exited with status {r.returncode}").removeprefix("error: ")


if __name__ == "__main__":
    sys.exit(main())
