"""A worker plugin that logs every model load and output write of the workers, and can kill one.

Worker processes cannot be monkeypatched from the test; this plugin patches them from inside, in
its ``setup``, which the scheduler runs on every worker, restarted ones included.
"""

import os

from distributed import WorkerPlugin


class WorkerSpy(WorkerPlugin):
    """Append ``load`` and ``write PATH`` lines to ``log``; the first process to write the
    ``kill_after``-th file (counted over all workers) exits at once, as a crashed worker would."""

    def __init__(self, log, kill_after=None):
        self.log, self.kill_after = str(log), kill_after

    def setup(self, worker):
        import sklearn_ddpm.segmenter as segmenter
        import sklearn_ddpm.utils._atomic as atomic

        self._originals = write, load = atomic.atomic_write, segmenter.load_segmenter
        spy = self

        def logged_load(*args, **kwargs):
            spy._append("load")
            return load(*args, **kwargs)

        class logged_write:
            def __init__(self, path, mode="wb"):
                self.path, self.inner = path, write(path, mode)

            def __enter__(self):
                return self.inner.__enter__()

            def __exit__(self, *exc):
                result = self.inner.__exit__(*exc)
                if exc[0] is None:  # the file is in place: count it, then maybe crash
                    spy._append(f"write {self.path}")
                    if spy.kill_after is not None and spy._writes() >= spy.kill_after and spy._first_to_kill():
                        os._exit(1)  # no cleanup, no goodbye to the scheduler: a crash
                return result

        atomic.atomic_write, segmenter.load_segmenter = logged_write, logged_load

    def teardown(self, worker):
        import sklearn_ddpm.segmenter as segmenter
        import sklearn_ddpm.utils._atomic as atomic

        atomic.atomic_write, segmenter.load_segmenter = self._originals

    def _append(self, line):
        # O_APPEND: lines of concurrent worker processes do not interleave.
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def _writes(self):
        with open(self.log) as f:
            return sum(line.startswith("write ") for line in f)

    def _first_to_kill(self):
        try:
            os.close(os.open(self.log + ".killed", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True


def read_log(log):
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line == "load"], [line[len("write "):] for line in lines if line.startswith("write ")]
