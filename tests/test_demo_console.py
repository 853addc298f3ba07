"""``make demo`` (examples/demo.py) keeps the console as clean as the CLI: a few lines, one bar per
stage, no skorch epoch tables or ANSI colour codes."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_prints_a_few_lines(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # Fewer members and pixels than `make demo` (same code path), so that the test stays short.
    done = subprocess.run([sys.executable, str(REPO / "examples" / "demo.py"), "--n-estimators", "2",
                           "--max-pixels-per-image", "200", "--threads", "1", "--output", str(tmp_path / "out"),
                           "--record", str(tmp_path / "demo.json")],
                          cwd=REPO, env=env, capture_output=True, timeout=600)
    # Bytes, decoded here: text mode would turn the bars' "\r" into new lines.
    console = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, console[-3000:]
    assert "\x1b[" not in console, console  # no ANSI colour codes
    assert "train_loss" not in console and "valid_loss" not in console, console  # no skorch epoch table
    # A bar redrawn in place ("\r") is one line; a few lines in all (6 of text, a bar per stage).
    finals = [line.split("\r")[-1] for line in console.split("\n") if line.strip()]
    assert len(finals) <= 12, "\n".join(finals)
    assert any(line.startswith("test mIoU:") for line in finals)
