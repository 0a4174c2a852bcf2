"""Long work (preparing a dataset, training) run one job at a time, in the background for the UI.

A tab starts a job and returns at once; the page then polls the job, so a reload reconnects to the
running job instead of losing it, and the queue stays free for conversions. The runner lives in the
``Workspace``, so every tab (and a host's page) sees the same job.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Optional

from .errors import UserError, describe_error

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


class Job:
    """One job's state as the UI shows it; ``work(job)`` updates it through ``report`` and ``add_note``."""

    def __init__(self, name: str):
        self.name = name
        self.state = RUNNING
        self.started = time.time()
        self.progress = None  # the latest progress object the work reported
        self.events: list = []  # every progress object, oldest first (the UI plots them)
        self.notes: list = []  # messages, oldest first
        self.result = None
        self.error: Optional[str] = None
        self.changes = 0  # bumped on every update, so a poll can tell whether anything is new
        self._cancel = threading.Event()

    def report(self, progress) -> None:
        self.progress = progress
        self.events.append(progress)
        message = getattr(progress, "message", "")
        if message:
            self.notes.append(message)
        self.changes += 1

    def add_note(self, text: str) -> None:
        self.notes.append(text)
        self.changes += 1

    def cancel(self) -> None:
        self._cancel.set()
        self.changes += 1

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self.state == RUNNING


class JobRunner:
    """Runs at most one job at a time; the last job stays readable after it ends."""

    def __init__(self):
        self._slot = threading.Lock()
        self.job: Optional[Job] = None  # the running job, else the last one
        self._holder = ""  # what holds the slot, for the message a refused start gets

    @contextmanager
    def exclusive(self, name: str):
        """Hold the one job slot for work done in the caller's thread (e.g. a Prepare click)."""
        if not self._slot.acquire(blocking=False):
            raise self._busy()
        self._holder = name
        try:
            yield
        finally:
            self._slot.release()

    def start(self, name: str, work: Callable[[Job], object]) -> Job:
        """Run ``work(job)`` on a thread; refused while another job runs."""
        if not self._slot.acquire(blocking=False):
            raise self._busy()
        self._holder = name
        job = self.job = Job(name)

        def run():
            try:
                job.result = work(job)
                job.state = CANCELLED if getattr(job.result, "stopped", False) else DONE
            except Exception as err:  # the job's page shows it; a bug also goes to the server log
                job.error, job.state = describe_error(err, log), FAILED
            finally:
                job.changes += 1
                self._slot.release()

        threading.Thread(target=run, name=f"job: {name}", daemon=True).start()
        return job

    def cancel(self) -> Optional[Job]:
        """Ask the running job to stop (training saves a checkpoint first); None when nothing runs."""
        job = self.job
        if job is None or not job.running:
            return None
        job.cancel()
        return job

    def _busy(self) -> UserError:
        return UserError("a job is running", f"{self._holder}; wait for it to finish or cancel it, then try again")
