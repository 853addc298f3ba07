"""Run a command in a child process and watch it as a user would: its memory, its CPU, its progress bars.

:func:`watch` starts the command, samples the resident memory of the child and its descendants
every ``interval`` seconds from ``/proc`` (psutil), reads its stderr as it comes (raw bytes: the
bars redraw with ``\\r``) and counts each tqdm bar's updates, then waits for it with ``os.wait4``,
which gives that very child's CPU seconds and peak memory (the kernel's ``ru_maxrss``).
"""

import os
import re
import subprocess
import sys
import threading
import time

# "desc:  42%|####      | 21/50 [..." as tqdm draws it (the " [" shows the total is whole); the
# description may be empty
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_BAR = re.compile(r"^(?P<desc>[^\r\n|]*?):?\s*(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+) \[")


class BarCounter:
    """What tqdm bars a stream drew: for each description, the counts shown and when.

    ``feed`` takes the stream's text in pieces as it arrives; ``summary()`` says, per bar, how
    many distinct counts it showed, the largest and the total, whether it moved before it ended
    (a count strictly between 0 and its total was drawn) and the seconds of its first and last
    change after ``start``.
    """

    def __init__(self, start=None):
        self.start = time.perf_counter() if start is None else start
        self.bars, self._tail = {}, ""

    def feed(self, text):
        text = self._tail + text
        pieces = re.split(r"[\r\n]", text)
        self._tail = pieces.pop()  # tqdm starts each redraw with "\r": the last one is followed by nothing yet
        for piece in pieces + [self._tail]:  # the tail counts once complete (up to its "[elapsed")
            self._parse(piece)

    def close(self):
        self._parse(self._tail)
        self._tail = ""

    def _parse(self, piece):
        # nested bars move the cursor with ANSI escapes between their redraws
        match = _BAR.match(_ANSI.sub("", piece).strip())
        if not match:
            return
        desc, n, total = match["desc"].strip(), int(match["n"]), int(match["total"])
        bar = self.bars.setdefault(desc, {"total": total, "counts": [], "times": []})
        if not bar["counts"] or bar["counts"][-1] != n:
            bar["counts"].append(n)
            bar["times"].append(time.perf_counter() - self.start)
        bar["total"] = total

    def summary(self):
        return {desc: {"total": b["total"], "distinct_counts_drawn": len(b["counts"]),
                       "last_count": b["counts"][-1], "moved_before_end": any(0 < n < b["total"] for n in b["counts"]),
                       "first_change_s": b["times"][0], "last_change_s": b["times"][-1]}
                for desc, b in self.bars.items()}


def tree_rss(pid):
    """Resident bytes of process ``pid`` and all its descendants now (0 once it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total


def watch(argv, *, cwd=None, env=None, interval=0.5, timeline_every=30.0, echo=True):
    """Run ``argv``; return what a user would see and what it cost.

    Returns
    -------
    dict
        ``returncode``, ``wall_seconds``, ``cpu_seconds`` (user + system of the child and its
        waited-for descendants), ``peak_rss_bytes_wait4`` (their ``ru_maxrss``),
        ``peak_rss_bytes_sampled`` (the largest sum of the tree's RSS over the samples),
        ``rss_timeline`` (``[seconds, bytes, load average]`` every ``timeline_every`` seconds),
        ``bars`` (:meth:`BarCounter.summary`), ``stdout`` and ``stderr_tail`` (the text as a
        terminal leaves it: each redrawn line at its last state).
    """
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    bars, stderr_parts, stdout_parts = BarCounter(start), [], []
    peak, timeline, done = [0], [], threading.Event()

    def read_stderr():
        while True:
            # os.read returns what is there: a buffered read would wait for its whole size and
            # miss the moments a bar was drawn.
            data = os.read(process.stderr.fileno(), 65536)
            if not data:
                break
            text = data.decode("utf-8", "replace")
            bars.feed(text)
            stderr_parts.append(text)
            if echo:
                sys.stderr.write(text)
                sys.stderr.flush()

    def read_stdout():
        for line in process.stdout:
            stdout_parts.append(line.decode("utf-8", "replace"))

    def sample():
        next_mark = 0.0
        while not done.is_set():
            rss = tree_rss(process.pid)
            peak[0] = max(peak[0], rss)
            elapsed = time.perf_counter() - start
            if elapsed >= next_mark and rss:
                timeline.append([round(elapsed, 1), rss, round(os.getloadavg()[0], 2)])
                next_mark += timeline_every
            done.wait(interval)

    threads = [threading.Thread(target=f, daemon=True) for f in (read_stderr, read_stdout, sample)]
    for thread in threads:
        thread.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    for thread in threads:
        thread.join()
    bars.close()
    from cli_example import clean_output  # a terminal's view of \r-redrawn bars

    return {"returncode": process.returncode, "wall_seconds": wall,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_bytes_wait4": usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024),
            "peak_rss_bytes_sampled": peak[0], "sample_interval_s": interval, "rss_timeline": timeline,
            "bars": bars.summary(), "stdout": "".join(stdout_parts).strip(),
            "stderr_tail": clean_output("".join(stderr_parts))[-4000:]}
