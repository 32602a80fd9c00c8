"""Who this process is in a run of several workers (``--strategy multiworker``), read from its
``TF_CONFIG`` without TensorFlow: main.py must know before TensorFlow starts whether it is the chief,
the one worker that checks and locks the output folders and writes the run's files. Also which rows
of each global batch a worker reads, and the ``TF_CONFIG`` of a worker on this machine (the launcher).

The rules are TensorFlow's (``tf.distribute.MultiWorkerMirroredStrategy`` reads the same variable):
the chief is the ``chief`` task if the cluster has one, else worker 0; workers are numbered after it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping, Optional, Sequence, Tuple

from cogan_tf.errors import UsageError

TRAINING_JOBS = ("chief", "worker")


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in the run: ``index`` 0 (the chief) to ``workers - 1``."""

    index: int = 0
    workers: int = 1

    @property
    def chief(self) -> bool:
        return self.index == 0

    @property
    def multi(self) -> bool:
        return self.workers > 1

    @property
    def name(self) -> str:
        return "the chief" if self.chief else f"worker {self.index}"


def parse_tf_config(text: str) -> Role:
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
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in TRAINING_JOBS:
        raise bad(f"task type {kind!r}: --strategy multiworker runs chief and worker tasks only")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs[kind]):
        raise bad(f"task index {index!r}: the cluster has {len(jobs[kind])} {kind} task(s)")
    has_chief = bool(jobs["chief"])
    place = 0 if kind == "chief" else index + has_chief
    return Role(index=place, workers=len(jobs["chief"]) + len(jobs["worker"]))


def role(strategy: str, environ: Optional[Mapping[str, str]] = None) -> Role:
    """This process's role under ``--strategy strategy``: only ``multiworker`` reads TF_CONFIG (a
    stray TF_CONFIG never makes another run a non-chief); without one, the run has one worker."""
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "").strip()
    if strategy != "multiworker" or not text:
        return Role()
    return parse_tf_config(text)


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


def tf_config(addresses: Sequence[str], index: int) -> str:
    """The TF_CONFIG of worker ``index`` of a cluster of ``addresses`` (worker 0 is the chief)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})
