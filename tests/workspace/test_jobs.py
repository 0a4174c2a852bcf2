"""The job runner: one job at a time (a background one or work in the caller's thread), the last job
readable after it ends, a failure kept as its one-line message, cancel asked of the running job."""

import threading

import pytest

from webui_lora.errors import UserError
from webui_lora.jobs import CANCELLED, DONE, FAILED, JobRunner


class Stopped:
    stopped = True


def wait(job):
    while job.running:
        threading.Event().wait(0.01)


def test_one_job_at_a_time_and_the_last_stays_readable():
    runner, release = JobRunner(), threading.Event()
    job = runner.start("training a", lambda job: release.wait(5) and 42)
    with pytest.raises(UserError, match="a job is running: training a; wait for it"):
        runner.start("training b", lambda job: None)
    with pytest.raises(UserError, match="training a"):
        with runner.exclusive("preparing b"):
            pass
    release.set()
    wait(job)
    assert (job.state, job.result, runner.job) == (DONE, 42, job)
    with runner.exclusive("preparing b"):
        with pytest.raises(UserError, match="a job is running: preparing b"):
            runner.start("training c", lambda job: None)


def test_failures_keep_their_message_and_cancel_reaches_the_job():
    runner = JobRunner()
    failed = runner.start("bad", lambda job: (_ for _ in ()).throw(UserError("a.wav", "too short")))
    wait(failed)
    assert (failed.state, failed.error) == (FAILED, "a.wav: too short")
    bug = runner.start("bug", lambda job: 1 / 0)
    wait(bug)
    assert bug.error.startswith("unexpected ZeroDivisionError") and "server log" in bug.error
    assert runner.cancel() is None  # nothing runs

    def until_cancelled(job):
        while not job.cancel_requested:
            threading.Event().wait(0.01)
        return Stopped()

    job = runner.start("long", until_cancelled)
    before = job.changes
    assert runner.cancel() is job and job.changes > before
    wait(job)
    assert job.state == CANCELLED
