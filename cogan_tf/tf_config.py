"""Who this process is in a run of several workers (``--strategy multiworker``), read from its
``TF_CONFIG`` without TensorFlow: main.py must know before TensorFlow starts whether it is the chief,
the one worker that checks and locks the output folders and writes the run's files. Also which rows
of each global batch a worker reads, and the ``TF_CONFIG`` of a worker on this machine (the launcher).

The rules are TensorFlow's (``tf.distribute.MultiWorkerMirroredStrategy`` reads the same variable):
the chief is the ``chief`` task if the cluster has one, else worker 0; workers are numbered after it.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import select
import signal
import socket
import time
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

from cogan_tf.errors import RunStopped, UsageError

TRAINING_JOBS = ("chief", "worker")


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in the run: ``index`` 0 (the chief) to ``workers - 1``."""

    index: int = 0
    workers: int = 1
    # host:port of every worker, in worker order (the chief first); empty for a run of one process.
    addresses: Tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @property
    def chief(self) -> bool:
        return self.index == 0

    @property
    def multi(self) -> bool:
        return self.workers > 1

    @property
    def name(self) -> str:
        return "the chief" if self.chief else f"worker {self.index}"


def parse(text: str) -> Role:
    """The role a ``TF_CONFIG`` value gives this process; a one-line :class:`UsageError` if it is
    not one MultiWorkerMirroredStrategy can run."""
    def bad(why: str) -> UsageError:
        return UsageError(f"TF_CONFIG: {why} (expected {{\"cluster\": {{\"worker\": [\"host1:port\", ...]}}, "
                          "\"task\": {\"type\": \"worker\", \"index\": 0}})")

    try:
        spec = json.loads(text)
    except ValueError as e:
        raise bad(f"not JSON ({e})") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise bad("needs a \"cluster\" and a \"task\"")
    others = sorted(set(cluster) - set(TRAINING_JOBS))
    if others:
        raise bad(f"{others[0]} tasks: --strategy multiworker runs chief and worker tasks only")
    jobs = {}
    for job in TRAINING_JOBS:
        tasks = cluster.get(job, [])
        if not isinstance(tasks, list) or not all(isinstance(t, str) and t for t in tasks):
            raise bad(f"cluster.{job} must be a list of \"host:port\" addresses")
        jobs[job] = tasks
    if len(jobs["chief"]) > 1:
        raise bad(f"{len(jobs['chief'])} chief tasks; a cluster has at most one")
    if not jobs["chief"] and not jobs["worker"]:
        raise bad("the cluster has no worker")
    kind, index = task.get("type"), task.get("index")
    if kind not in TRAINING_JOBS:
        raise bad(f"task type {kind!r}: --strategy multiworker runs chief and worker tasks only")
    if index is None:
        raise bad("the task has no \"index\"")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs[kind]):
        raise bad(f"task index {index!r}: the cluster has {len(jobs[kind])} {kind} task(s)")
    addresses = tuple(jobs["chief"] + jobs["worker"])
    for address in addresses:
        _port(address, bad)
    twice = sorted({a for a in addresses if addresses.count(a) > 1})
    if twice:
        raise bad(f"{twice[0]} is given to {addresses.count(twice[0])} tasks; every worker needs its own port")
    has_chief = bool(jobs["chief"])
    place = 0 if kind == "chief" else index + has_chief
    return Role(index=place, workers=len(addresses), addresses=addresses)


def _port(address: str, bad) -> int:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise bad(f"{address!r} is not a \"host:port\" address")
    return int(port)


def role(strategy: str, environ: Optional[Mapping[str, str]] = None) -> Role:
    """This process's role under ``--strategy strategy``: only ``multiworker`` reads TF_CONFIG (a
    stray TF_CONFIG never makes another run a non-chief); without one, the run has one worker."""
    environ = os.environ if environ is None else environ
    if strategy != "multiworker" or "TF_CONFIG" not in environ:
        return Role()
    if not environ["TF_CONFIG"].strip():
        raise UsageError("TF_CONFIG is set but empty: unset it to train as one worker, or describe the cluster "
                         "(python -m cogan_tf.launch sets it for workers on this machine)")
    return parse(environ["TF_CONFIG"])


def worker_rows(batch_size: int, replicas: int, workers: int, index: int) -> Tuple[int, int]:
    """``(start, stop)``: the rows of each global batch worker ``index`` reads, its replicas' contiguous
    shares in replica order (replica r of n takes rows ``r * batch / n`` to ``(r + 1) * batch / n``, as
    one process under MirroredStrategy splits the batch and :func:`cogan_tf.gan.replica_share` splits z)."""
    if replicas % workers:
        raise UsageError(f"{replicas} replicas on {workers} workers: every worker needs the same number of devices")
    if batch_size % replicas:
        raise UsageError(f"--batch_size {batch_size} does not split evenly across {replicas} replicas: "
                         f"pass a multiple of {replicas}")
    per = batch_size // replicas
    local = replicas // workers
    return index * local * per, (index + 1) * local * per


def for_worker(addresses: Sequence[str], index: int) -> str:
    """The TF_CONFIG of worker ``index`` of a cluster of ``addresses`` (worker 0 is the chief)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})


# What a worker waiting for the others answers on its port: "cogan_tf worker <index>".
_BANNER = b"cogan_tf worker "
_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class _Signalled(Exception):
    pass


def _probe(address: str, timeout: float = 1.0, server: Optional[socket.socket] = None, index: int = 0) -> Optional[str]:
    """What answers at ``address``: ``"worker <i>"`` (a worker still waiting here), ``"tensorflow"`` (a
    worker whose TensorFlow server is up: gRPC speaks first, an HTTP/2 SETTINGS frame), ``"other"``
    (some other program), or None (nothing listens).

    While it waits for the answer, this worker's own ``server`` (if given) keeps answering as worker
    ``index``: two waiting workers probing each other at the same moment would otherwise each wait for
    the other's banner, and each take the other for another program."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            end = time.monotonic() + timeout
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    return "other"
                ready, _, _ = select.select([s] if server is None else [s, server], [], [], left)
                if server is not None and server in ready:
                    _answer(server, index)
                if s in ready:
                    head = s.recv(32)
                    break
    except OSError:
        return None
    if head.startswith(_BANNER):
        return "worker " + head[len(_BANNER):].decode("ascii", "replace").strip()
    if len(head) >= 9 and head[3] == 0x04:  # HTTP/2 frame header, type SETTINGS
        return "tensorflow"
    return "other"


def wait_for_workers(role: Role, timeout: float, log: Callable[[str], None] = print, say_after: float = 3.0,
                     poll: float = 0.25) -> None:
    """Wait, before TensorFlow starts its cluster, until every other worker of ``role``'s run answers on
    its address; meanwhile answer on this worker's own port, so they see this one.

    TensorFlow's own wait for a missing worker holds the interpreter in C++: it prints nothing, cannot be
    bounded and ignores SIGINT and SIGTERM (its coordination service catches SIGTERM). Here the wait says
    within ``say_after`` seconds whom it waits for and where, gives up after ``timeout`` seconds, and stops
    on SIGINT, SIGTERM or SIGHUP, each in one line (:class:`RunStopped`). A port another program holds is
    refused at once."""
    if not role.multi:
        return
    me = role.addresses[role.index]
    port = int(me.rpartition(":")[2])
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("", port))
    except OSError as e:
        server.close()
        if e.errno == errno.EADDRINUSE:
            raise UsageError(f"TF_CONFIG gives {role.name} {me}, but port {port} is in use on this machine: "
                             "choose a free port for it (python -m cogan_tf.launch picks free ones)") from None
        raise UsageError(f"TF_CONFIG gives {role.name} {me}, whose port {port} cannot be opened here "
                         f"({e.strerror})") from None
    server.listen(64)
    server.setblocking(False)

    def on_signal(signum, frame):
        raise _Signalled(signum)

    previous = {}
    for s in _STOP_SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            previous[s] = signal.signal(s, on_signal)
    missing: List[int] = [i for i in range(role.workers) if i != role.index]
    start = time.monotonic()
    said = 0.0
    try:
        while missing:
            _answer(server, role.index)
            notes = {}
            for i in list(missing):
                seen = _probe(role.addresses[i], server=server, index=role.index)
                if seen == "tensorflow" or seen == f"worker {i}":
                    missing.remove(i)
                elif seen is not None:
                    notes[i] = ("another program answers there" if seen == "other" else
                                f"{seen} answers there: TF_CONFIG gives two workers one port?")
            if not missing:
                break
            waited = time.monotonic() - start
            who = ", ".join(f"{_name(i)} at {role.addresses[i]}" + (f" ({notes[i]})" if i in notes else "")
                            for i in missing)
            if waited >= timeout:
                raise RunStopped(f"{role.name} waited {timeout:g} s for {who}, in vain: start every worker of "
                                 "the run with the same command and its own TF_CONFIG (--wait_for_workers sets "
                                 "the wait); nothing was trained")
            if waited >= say_after and (not said or waited - said >= 60):
                log(f" [*] {role.name} ({me}) is waiting for {who} (gives up after {timeout:g} s)")
                said = waited
            time.sleep(poll)
    except _Signalled as e:
        signum = e.args[0]
        raise RunStopped(f"stopped by {signal.Signals(signum).name} while {role.name} waited for the other "
                         "workers: nothing was trained", status=128 + signum, requested=True) from None
    finally:
        server.close()
        for s, handler in previous.items():
            signal.signal(s, handler)


def _answer(server: socket.socket, index: int) -> None:
    """Tell every worker probing this one which worker it is (and close the connection)."""
    while True:
        try:
            conn, _ = server.accept()
        except (BlockingIOError, InterruptedError):
            return
        with conn:
            try:
                conn.sendall(_BANNER + str(index).encode() + b"\n")
            except OSError:
                pass


def _name(index: int) -> str:
    return "the chief" if index == 0 else f"worker {index}"
