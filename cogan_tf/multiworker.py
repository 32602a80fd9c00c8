"""What the training loop does differently as one of several workers (``--strategy multiworker``, one
process per worker, :mod:`cogan_tf.tf_config` says which): TensorFlow's MultiWorkerMirroredStrategy with
bounded waits, each worker's rows of the global batch, the agreements the workers reach through one
small all-reduce each (same run, same checkpoint, a stop signal), and where a worker other than the
chief puts the files TensorFlow has every worker write.

With one worker every method does what one process always did, so the loop calls them unconditionally.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from cogan_tf import tf_config
from cogan_tf.errors import RunStopped, UsageError, first_line

# A blocking call to the other workers (a step, an agreement) that waits longer than this fails the run.
# A killed worker is noticed sooner (its connections close, and the coordination service misses its
# heartbeats within seconds): this bounds the wait for one that is alive but stuck. Workers legitimately
# drift apart by the chief's grid writes and by compiling the first step at their own pace, far less
# than this. The bound is kept by one thread of this module (:class:`Watchdog`), not by TensorFlow's
# per-collective timeout (``CommunicationOptions(timeout_seconds=...)``): TensorFlow keeps that one with
# a new thread per collective that sleeps out the whole timeout even when the collective took
# milliseconds (base_collective_executor.cc, "TODO: Share the timeout watchdog thread among
# collectives"), about 30 threads a step for the CoGAN, so a run of the default length ran out of
# threads (docs/PERFORMANCE.md, "Several workers").
COLLECTIVE_TIMEOUT_S = 600

# What a collective raises when another worker is gone: the connection closed or refused, the
# coordination service's heartbeat lost, the watchdog's bound.
LOST = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError, tf.errors.AbortedError)
_REASONS = (("Connection reset", "connection reset"), ("Connection refused", "connection refused"),
            ("failed to connect", "connection refused"), ("stopped sending heartbeats", "its heartbeats stopped"),
            ("Socket closed", "connection closed"), ("timed out", "timed out"), ("Deadline", "timed out"))


def make_strategy(wait_for_workers: float = COLLECTIVE_TIMEOUT_S, log: Callable[[str], None] = print):
    """MultiWorkerMirroredStrategy on the cluster TF_CONFIG describes, once every worker answers
    (:func:`cogan_tf.tf_config.wait_for_workers`, at most ``wait_for_workers`` seconds); a cluster that
    cannot start in one line."""
    role = tf_config.role("multiworker")
    tf_config.wait_for_workers(role, wait_for_workers, log=log if role.chief else _to_stderr)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (tf.errors.OpError, ValueError, RuntimeError) as e:
        raise UsageError(f"--strategy multiworker: the cluster in TF_CONFIG did not start ({first_line(e)})") from None


def _to_stderr(line: str) -> None:
    """A worker other than the chief has no stdout (main.py): what it waits for goes to stderr."""
    print(line, file=sys.stderr, flush=True)


class Watchdog:
    """Ends every collective of this process that is still waiting ``bound_s`` seconds after the
    blocking call around it began (:meth:`bounded`), with one thread for the whole run. The call then
    raises TensorFlow's DeadlineExceededError, which :meth:`Workers.on_lost_contact` turns into one line.
    TensorFlow's aborted collectives stay aborted: the run ends there."""

    def __init__(self, bound_s: float, abort: Optional[Callable[[str], None]] = None, tick_s: float = 1.0):
        self.bound_s, self.tick_s = bound_s, tick_s
        self._abort = abort or _abort_collectives
        self._deadline: Optional[float] = None
        self._thread: Optional[threading.Thread] = None
        self.fired = False

    @contextlib.contextmanager
    def bounded(self) -> Iterator[None]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="cogan_tf-watchdog", daemon=True)
            self._thread.start()
        self._deadline = time.monotonic() + self.bound_s
        try:
            yield
        finally:
            self._deadline = None

    def _watch(self) -> None:
        while True:
            time.sleep(self.tick_s)
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline and not self.fired:
                self.fired = True
                self._abort(f"timed out: no answer from another worker for {self.bound_s:g} s")


def _abort_collectives(message: str) -> None:
    # TensorFlow's one way to end a collective that waits (its per-collective timeout is the one above).
    from tensorflow.python.eager import context

    context.context().abort_collective_ops(tf.errors.DEADLINE_EXCEEDED, message)


_watchdog: Optional[Watchdog] = None


def _fingerprint(gan) -> int:
    """What every worker must agree on, hashed: the model and everything that decides the data order,
    the step's arithmetic and when checkpoints are saved (every worker takes part in a save)."""
    cfg = gan.train_cfg
    run = {"model": gan.name, "model_config": dataclasses.asdict(gan.model_cfg), "seed": gan.seed,
           **{k: getattr(cfg, k) for k in ("dataset", "batch_size", "train_size", "epoch", "max_steps", "learning_rate",
                                           "beta1", "beta2", "disjoint_domains", "mixed_precision", "jit_compile",
                                           "save_every", "val_size", "tf32", "deterministic", "adam")}}
    digest = hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:7], "big")


class Workers:
    """This process's part in the run (``role``) and the collectives through which the workers agree."""

    def __init__(self, strategy, role: tf_config.Role):
        self.strategy, self.role = strategy, role
        self._gather = None

    @property
    def chief(self) -> bool:
        return self.role.chief

    def bounded(self):
        """Around a blocking call to the other workers: it fails after :data:`COLLECTIVE_TIMEOUT_S`
        (:class:`Watchdog`). One process: no bound, nothing to wait for."""
        global _watchdog
        if not self.role.multi:
            return contextlib.nullcontext()
        if _watchdog is None:
            _watchdog = Watchdog(COLLECTIVE_TIMEOUT_S)
        return _watchdog.bounded()

    def gather(self, value: int) -> List[int]:
        """Every worker's ``value``, in worker order (one all-reduce of a one-hot vector)."""
        n = self.role.workers
        if n == 1:
            return [value]
        if self._gather is None:
            local = self.strategy.num_replicas_in_sync // n  # each of a worker's replicas adds the same vector

            def replica(v):
                # The copy puts the value on the replica's device: an argument as passed has none to reduce from.
                return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(v))

            @tf.function(input_signature=[tf.TensorSpec([n], tf.int64)])
            def gather(v):
                return self.strategy.experimental_local_results(self.strategy.run(replica, args=(v,)))[0] // local

            self._gather = gather
        mine = np.zeros(n, np.int64)
        mine[self.role.index] = value
        with self.bounded():
            return [int(x) for x in self._gather(tf.constant(mine)).numpy()]

    def check_same_run(self, gan) -> None:
        """Refuse, on every worker alike, workers not started for the same run."""
        prints = self.gather(_fingerprint(gan))
        odd = [i for i, p in enumerate(prints) if p != prints[0]]
        if odd:
            raise UsageError(f"worker {odd[0]} is not set up for the chief's run (another command, or another "
                             "checkpoint folder): start every worker with the same command, all of them seeing "
                             "the chief's checkpoint folder at the same path")

    def check_same_step(self, step: int) -> None:
        """Refuse workers that restored different checkpoints: each reads the checkpoint folder itself."""
        steps = self.gather(step)
        if len(set(steps)) > 1:
            others = ", ".join(f"worker {i} step {s}" for i, s in enumerate(steps) if i)
            raise UsageError(f"the workers restored different checkpoints (the chief step {steps[0]}, {others}): "
                             "every worker must see the chief's checkpoint folder at the same path (a shared folder)")

    def agree_on_stop(self, stop) -> bool:
        """Whether any worker has a stop signal: one all-reduce, so all of them stop after the same step
        even when the signal reached only one. ``stop`` (a :class:`cogan_tf.stops.StopSignals`) then
        holds the first such worker's signal, and which workers got one if not all did.

        Asked after every step, not at save points: a stop must come within a step of the signal, as in
        one process (a scheduler's SIGTERM grace is short; save points can be --save_every steps apart),
        and a vector of one integer per worker is little next to the step's own 13 all-reduces.
        TensorFlow's PreemptionCheckpointHandler agrees the same way through the coordination service,
        but it saves its own checkpoint and ends the process itself, which the loop's stop line and
        checkpoint rules would have to give up."""
        if not self.role.multi:
            return stop.signum is not None
        signals = self.gather(stop.signum or 0)
        got = [i for i, s in enumerate(signals) if s]
        if not got:
            return False
        stop.agree(signals[got[0]], got if len(got) < len(signals) else None)
        return True

    def distribute(self, make_dataset: Callable[[], tf.data.Dataset], batch_size: int):
        """The batches this process feeds the step. Several workers: each reads its own rows of every
        global batch (:func:`cogan_tf.tf_config.worker_rows`), so one step's rows over all workers are the
        batch one process takes at that step. Sliced here rather than left to TensorFlow's automatic
        sharding of one dataset, which gives the same rows for this pipeline (it splits each batch, then
        deals the pieces out) only by rewriting the pipeline in a way that depends on its source: a
        dataset read from files is sharded by file. One process with several replicas: the global batch
        split across them."""
        if self.role.multi:
            tf_config.worker_rows(batch_size, self.strategy.num_replicas_in_sync, self.role.workers, self.role.index)

            def rows(ctx: tf.distribute.InputContext):
                replicas = ctx.num_replicas_in_sync
                start, stop = tf_config.worker_rows(batch_size, replicas, ctx.num_input_pipelines,
                                                    ctx.input_pipeline_id)
                ds = make_dataset().map(lambda *b: tuple(x[start:stop] for x in b))
                per = batch_size // replicas
                return ds.rebatch(per) if stop - start > per else ds  # one element per local replica, in order

            return self.strategy.distribute_datasets_from_function(rows)
        ds = make_dataset()
        if self.strategy.num_replicas_in_sync > 1:
            return self.strategy.experimental_distribute_dataset(ds)  # the global batch split across replicas
        return ds

    def save_dir(self, ckpt_dir: str) -> Optional[str]:
        """Where this worker's checkpoint saves go if not ``ckpt_dir``: TensorFlow has every worker take
        part in a save and keeps the chief's; another worker saves into a temporary folder of its own,
        emptied after each save (by :class:`cogan_tf.checkpoints.Saver`)."""
        return None if self.chief else self._scratch("checkpoint", ckpt_dir)

    def export_dir(self, export_dir: str) -> str:
        """Where this worker exports: ``export_dir`` on the chief, else a temporary folder (removed by the caller)."""
        return export_dir if self.chief else self._scratch("export", export_dir)

    def _scratch(self, kind: str, beside: str) -> str:
        """A worker's temporary folder for ``kind`` files of the run whose folder is ``beside``: in the
        system's temporary folder, never among the chief's files (which may be shared with this machine),
        and named by the run, so what a killed write left is removed here, at the next start."""
        path = os.path.join(tempfile.gettempdir(), f"cogan_tf-worker{self.role.index}-{kind}-"
                            + hashlib.sha1(os.path.realpath(beside).encode()).hexdigest()[:12])
        shutil.rmtree(path, ignore_errors=True)
        return path

    @contextlib.contextmanager
    def on_lost_contact(self, where: Callable[[], Tuple[str, str]]) -> Iterator[None]:
        """A collective failing because another worker is gone becomes one line: ``where()`` gives when
        (``step 37``) and, on the chief, what the newest checkpoint is (another worker cannot know
        whether the chief finished writing its last one)."""
        try:
            yield
        except LOST as e:
            if not self.role.multi:
                raise
            when, kept = where()
            kept = kept if self.chief else "the chief's newest checkpoint is where the run resumes"
            raise RunStopped(f"{when}: {self.role.name} lost contact with another worker ({_reason(e)}); "
                             f"{kept}: start every worker again with the same command to resume") from None


def _reason(e: BaseException) -> str:
    text = str(e)
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    return re.sub(r"Error$", "", type(e).__name__).lower()
