"""What stops a training run between two steps, with a checkpoint of the step: SIGINT (Ctrl-C),
SIGTERM, SIGHUP (a closed terminal or ssh session) and a lost output (its pipe closed: ``| head``, or
the launcher that read it killed). :class:`StopSignals` remembers the first of these; the loop stops at
the end of the step (several workers agree on it first, :meth:`cogan_tf.multiworker.Workers.agree_on_stop`).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from typing import Callable, Dict, List, Optional

from cogan_tf.errors import RunStopped

# Not a signal the process receives (Python ignores SIGPIPE, so a write to a closed pipe fails instead):
# the number a shell reports for a writer whose reader went away, 128 + 13.
LOST_OUTPUT = signal.SIGPIPE


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP while training: the first one is remembered, and the loop stops at the
    end of the step with a checkpoint. The handlers go back to the system's default at once, so a second
    signal ends the process immediately (without that checkpoint). A signal the process was started to
    ignore stays ignored (``nohup`` ignores SIGHUP; a shell's background job, SIGINT). Outside the main
    thread, where Python cannot install handlers, no signal handler changes.

    A write to stdout or stderr that fails because the pipe was closed stops the run the same way
    (status 141, as a shell reports a writer whose reader went away), and what is written after it goes
    to /dev/null: the run is not worth continuing unwatched, nor to be lost to a ``BrokenPipeError``,
    and it resumes exactly where it stopped."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.signum: Optional[int] = None
        self.sent_to = ""  # which workers got the signal, when not all of them did
        self._previous: Dict[int, object] = {}
        self._streams: List[tuple] = []

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                if signal.getsignal(s) is not signal.SIG_IGN:
                    self._previous[s] = signal.signal(s, self._handle)
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if not isinstance(stream, _Guarded):
                self._streams.append((name, stream))
                setattr(sys, name, _Guarded(stream, self._lost_output))
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        for s in self._previous:
            signal.signal(s, signal.SIG_DFL)

    def _lost_output(self) -> None:
        if self.signum is None:
            self.signum = LOST_OUTPUT

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            # None: a handler installed outside Python (TensorFlow's coordination service catches SIGTERM);
            # Python cannot put it back, and the process is about to end.
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        self._previous = {}
        for name, stream in self._streams:
            setattr(sys, name, stream)
        self._streams = []

    def agree(self, signum: int, workers: Optional[List[int]] = None) -> None:
        """Stop for ``signum``, which the workers ``workers`` got (None: all of them)."""
        self.signum = signum
        if workers:
            self.sent_to = " (sent to " + ", ".join("the chief" if i == 0 else f"worker {i}" for i in workers) + ")"

    def _what(self) -> str:
        if self.signum == LOST_OUTPUT:
            return f"stopped because its output closed (a closed pipe){self.sent_to.replace('sent to', 'of')}"
        return f"stopped by {signal.Signals(self.signum).name}{self.sent_to}"

    def stopped(self, step: int, saved: str, what: str = "") -> RunStopped:
        return RunStopped(f"{self._what()} after step {step}: saved {saved}{what}; run the same command to resume",
                          status=128 + self.signum, requested=True)

    def during_export(self, saved: str, exported: str) -> RunStopped:
        return RunStopped(f"{self._what()} during the export, which was let finish: the training is complete, "
                          f"saved {saved}, exported {exported}", status=128 + self.signum, requested=True)


class _Guarded:
    """``stream`` (stdout or stderr), whose first write to a closed pipe calls ``on_lost`` and points its
    file descriptor at /dev/null, so neither this write, nor a later one, nor the interpreter's last
    flush at exit raises ``BrokenPipeError``."""

    def __init__(self, stream, on_lost: Callable[[], None]):
        self._stream, self._on_lost = stream, on_lost

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as e:
            self._lost(e)
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except OSError as e:
            self._lost(e)

    def _lost(self, e: OSError) -> None:
        if e.errno not in (errno.EPIPE, errno.ECONNRESET):
            raise e
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
        self._on_lost()

    def __getattr__(self, name):
        return getattr(self._stream, name)
