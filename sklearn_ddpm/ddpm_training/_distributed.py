"""Data-parallel :func:`train_ddpm` under ``torchrun``: the process group and the few collectives the loop needs.

``torchrun`` (``python -m torch.distributed.run``) starts one process per rank and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` joins that
process group (gloo on the CPU, NCCL on CUDA) and the loop wraps the UNet in
``DistributedDataParallel``, which averages the gradients. Outside ``torchrun`` (no
``WORLD_SIZE``, or ``WORLD_SIZE=1``) every function here is a no-op and training is the plain
single-process loop.
"""

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run.

    Attributes
    ----------
    rank : int
        This process's rank (0 writes checkpoints, logs and the export).
    world_size : int
        Number of processes; 1 for an ordinary single-process run.
    owns_group : bool
        Whether :func:`setup` created the process group (and :func:`teardown` destroys it); a
        group the caller initialised is left to the caller.
    """

    rank: int = 0
    world_size: int = 1
    owns_group: bool = False

    @property
    def enabled(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def world_size():
    """The number of processes of the run this process belongs to or is about to join (1 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process():
    """Whether this process is rank 0 (or not part of a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def setup(device):
    """Join the process group ``torchrun`` describes, or use one the caller initialised.

    Parameters
    ----------
    device : torch.device
        The requested device. On CUDA without an index, each rank takes ``cuda:LOCAL_RANK`` (one
        GPU per process, as ``torchrun --nproc_per_node`` = GPUs per node expects).

    Returns
    -------
    context : DistContext
    device : torch.device
        The device this rank trains on.
    """
    if world_size() <= 1:
        return DistContext(), device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), owns_group=False), device
    # gloo is the CPU backend; NCCL needs one CUDA device per rank, set just above.
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), owns_group=True), device


def teardown(ctx):
    """Destroy the process group if :func:`setup` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj, ctx):
    """Rank 0's ``obj`` on every rank (pickled; for checkpoints and settings, not per-step data)."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_object(obj, ctx):
    """The list of every rank's ``obj`` on rank 0 (None on the other ranks; ``[obj]`` without a group)."""
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def sum_over_ranks(tensor, ctx):
    """Sum of ``tensor`` over the ranks (in place; the tensor itself without a group)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def rank0_flag(flag, ctx, device):
    """Rank 0's boolean ``flag`` on every rank, so that a decision taken on one clock binds all ranks."""
    if not ctx.enabled:
        return bool(flag)
    # NCCL only moves CUDA tensors; gloo only CPU ones.
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device if device.type == "cuda" else "cpu")
    dist.broadcast(t, src=0)
    return bool(t.item())


def barrier(ctx):
    if ctx.enabled:
        dist.barrier()


def rank_seed(random_state, rank, step=0):
    """Seed of rank ``rank``'s global torch generator (dropout) from step ``step`` on.

    Used after the weight initialisation, which all ranks draw alike, and when a checkpoint holds
    no state for this rank (written by a run with fewer processes). Rank 0 of a fresh run is not
    reseeded, so that it draws what a single process would; the other ranks get independent
    streams (``SeedSequence`` of ``(random_state, rank, step)``), not copies of rank 0's
    dropout masks.
    """
    return int(np.random.SeedSequence([int(random_state), int(rank), int(step)]).generate_state(1)[0])


def local_rng_state(device):
    """This rank's own generator states (the ones ranks do not share): torch's global one and its GPU's."""
    state = {"torch_global": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_local_rng_state(state, device):
    """Restore a state saved by :func:`local_rng_state`."""
    torch.set_rng_state(state["torch_global"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def unwrap(model):
    """The UNet inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
