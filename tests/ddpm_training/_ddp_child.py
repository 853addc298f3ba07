"""Worker script that ``test_distributed.py`` starts with ``torchrun`` (not a test module).

    python -m torch.distributed.run ... _ddp_child.py MODE CLI_ARGS [:: CLI_ARGS ...]

Each ``::``-separated argument list is one ``sklearn-ddpm`` command line, run in order.

MODE
    ``plain``: just the commands (``train_ddpm`` joins the torchrun group itself).
    ``own-group``: initialise the gloo group here first, as a caller embedding ``train_ddpm`` in
    its own distributed program would, and check that ``train_ddpm`` leaves it alone; rank 1's
    ``time.monotonic`` is frozen, so a ``--max-minutes`` budget can only end the run through
    rank 0's decision.
    ``slow``: every optimizer step sleeps 0.25 s, so that the test can kill the run mid-way, and
    each rank writes its process id to ``$DDP_TEST_PID_DIR/rank-$RANK``, so that it can kill one rank.
"""

import sys
import time


def main(argv):
    mode, *rest = argv
    commands, current = [], []
    for arg in rest:
        if arg == "::":
            commands.append(current)
            current = []
        else:
            current.append(arg)
    commands.append(current)

    import torch
    import torch.distributed as dist

    if mode == "slow":
        import os
        from pathlib import Path

        Path(os.environ["DDP_TEST_PID_DIR"], f"rank-{os.environ['RANK']}").write_text(str(os.getpid()))
        step = torch.optim.AdamW.step

        def slow_step(self, *args, **kwargs):
            time.sleep(0.25)
            return step(self, *args, **kwargs)

        torch.optim.AdamW.step = slow_step
    if mode == "own-group":
        dist.init_process_group("gloo")
        if dist.get_rank() != 0:
            time.monotonic = lambda: 0.0

    from sklearn_ddpm.cli import main as cli

    for command in commands:
        rc = cli(command)
        if rc:
            return rc
        if mode == "own-group" and not dist.is_initialized():
            print("train_ddpm destroyed the caller's process group", file=sys.stderr)
            return 3
    if mode == "own-group":
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
