"""Shared helpers of the benchmarks: machine description, peak memory, JSON output, tables, data.

Every benchmark is ``python benchmarks/NAME.py [--quick] [--device cpu|cuda] [--out PATH]``; it
writes ``benchmarks/results/NAME.json`` (or ``--out``) and prints a short table.
"""

import argparse
import json
import os
import platform
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
RESULTS_DIR = BENCHMARKS_DIR / "results"
DATA_DIR = REPO_ROOT / ".." / "shared" / "data"
NO_GPU = "not measured (no GPU)"

if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout without installing
    sys.path.insert(0, str(REPO_ROOT))


def parser(description):
    """Argument parser with the options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny settings, seconds not minutes (smoke test)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="where to run; default: cuda when available, else cpu")
    p.add_argument("--out", type=Path, default=None, help="JSON output path (default benchmarks/results/NAME.json)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's); 1 avoids thread spinning on a busy machine")
    return p


# Threads of the last measured block: the JSON is written after the setting is restored.
_measured_threads = None


@contextmanager
def torch_threads(n):
    """Run the block with ``n`` torch CPU threads (None: unchanged), restoring the setting after."""
    import torch

    global _measured_threads
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    _measured_threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(requested):
    """``(device, note)``: the device to use and, when a GPU was asked for but is absent, why not."""
    import torch

    if requested is None:
        return ("cuda" if torch.cuda.is_available() else "cpu"), None
    if requested == "cuda" and not torch.cuda.is_available():
        return None, NO_GPU
    return requested, None


def benchmark_device(name, args):
    """``(device, skipped)``: the device to measure on, or ``(None, path)`` after recording in the JSON
    at ``path`` that a requested GPU is missing."""
    device, note = resolve_device(args.device)
    if device is not None:
        return device, None
    print(f"{name} on cuda: {note}")
    return None, write_json(name, {"status": note, "device": "cuda"}, args.out)


def machine():
    """CPU model, cores, memory, torch/diffusers versions and the GPU, if any."""
    import torch

    from sklearn_ddpm.utils._devices import cpu_name

    cpu = cpu_name()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        pages = None
    info = {
        "cpu": cpu,
        "cpu_cores": cores,
        "torch_threads": _measured_threads or torch.get_num_threads(),
        "ram_gib": round(pages / 2**30, 1) if pages else None,
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    return info


def peak_rss_bytes():
    """Peak resident memory of this process so far.

    ``getrusage``'s ``ru_maxrss`` (Linux reports KiB, macOS bytes); on Linux also ``VmHWM``, the
    current ``VmRSS`` and every ``current_rss_bytes`` reading so far, because the kernel updates its
    high-water marks lazily (a page below an earlier reading was seen).
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = int(peak if sys.platform == "darwin" else peak * 1024)
    readings = (_proc_status("VmHWM"), current_rss_bytes(), _max_rss_read)
    return max([peak] + [v for v in readings if v is not None])


def _proc_status(field):
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


_max_rss_read = None  # the largest current_rss_bytes() reading, part of peak_rss_bytes()


def current_rss_bytes():
    """Resident memory of this process now (Linux ``/proc``; None elsewhere)."""
    global _max_rss_read
    rss = _proc_status("VmRSS")
    if rss is not None:
        _max_rss_read = max(rss, _max_rss_read or 0)
    return rss


def synchronize(device):
    import torch

    if device is not None and str(device).startswith("cuda"):
        torch.cuda.synchronize()


@contextmanager
def stopwatch(device=None):
    """Wall time of the block in ``result["seconds"]``, GPU work included."""
    result = {}
    synchronize(device)
    start = time.perf_counter()
    try:
        yield result
    finally:
        synchronize(device)
        result["seconds"] = time.perf_counter() - start


def write_json(name, payload, out=None, device=None):
    """Write ``payload`` plus the machine description to ``out`` or ``benchmarks/results/NAME.json``.

    With ``device`` other than CUDA the record also says that no GPU figure was measured.
    """
    path = Path(out) if out is not None else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **payload}
    record.setdefault("backbone_sha256", backbone_sha256(backbone_source(payload)))
    if device is not None and not str(device).startswith("cuda"):
        record["gpu"] = NO_GPU
    path.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    return path


def backbone_sha256(source):
    """Content hash naming a backbone by its weights: the SHA-256 over every ``*.safetensors`` file of
    the model folder ``source`` (sorted by path relative to it; each path, then its bytes), or over
    the single weights file ``source`` (a guided-diffusion ``.pt``, a checkpoint). None when ``source``
    is None or not a local weights file or model folder (a hub id, an in-memory model, a fitted
    segmenter's file): then the record says nothing
    rather than something guessed. Two exports of the same weights give the same hash; a retrained or
    resumed model, another."""
    import hashlib

    if source is None:
        return None
    path = Path(str(source))
    if path.is_file() and path.suffix in (".safetensors", ".pt", ".pth", ".ckpt", ".bin"):  # weights, not a fitted model
        files = [path]
    elif path.is_dir():
        files = sorted(path.rglob("*.safetensors"))
        if not files:
            return None
    else:
        return None
    digest = hashlib.sha256()
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def backbone_source(payload):
    """The local backbone a record's ``payload`` names: its ``test_model``, ``model``, ``backbone`` or ``cv_model``
    entry (top level or under ``settings``) when that is a path, or a ``Backbone(source='PATH', ...)``
    description; None when the payload names none (the hash is then not recorded)."""
    import re

    for holder in (payload, payload.get("settings") if isinstance(payload.get("settings"), dict) else {}):
        for key in ("test_model", "model", "backbone", "cv_model"):
            value = holder.get(key)
            if value is None:
                continue
            match = re.search(r"source='([^']+)'", str(value))
            candidate = match.group(1) if match else str(value)
            if Path(candidate).exists():
                return candidate
    return None


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (tuple, set, np.ndarray)):
        return list(value)
    return str(value)


STD_NOTE = "sample standard deviation over seeds (ddof=1); null for a single seed"


def mean_sample_std(values):
    """``(mean, std)`` of per-seed ``values``: ``std`` is the sample standard deviation (``ddof=1``),
    None for a single value (one seed says nothing about the spread)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), (float(values.std(ddof=1)) if values.size > 1 else None)


def format_mean_std(values, digits=1):
    """``"mean ± sample std"`` of per-seed ``values`` (just the mean for a single seed)."""
    mean, std = mean_sample_std(values)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def print_table(rows, columns, title=None):
    """Print ``rows`` (dicts) as a plain-text table of ``columns`` (keys); floats get 4 significant digits."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    if title:
        print(title)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def horse_data(split, n, size=None, with_masks=True):
    """``n`` Weizmann horse images (and masks) of ``split``, optionally resized to ``size`` x ``size``.

    Returns ``(images, masks, source)``; when the shared data folder is absent, random images and
    blob masks stand in and ``source`` says so, so a benchmark still runs (its figures then are
    not about real data).
    """
    from PIL import Image

    root = DATA_DIR / "weizmann_horse"
    splits = root / "splits.json"
    if not splits.is_file():
        rng = np.random.default_rng(0)
        side = size or 64
        images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
        yy, xx = np.mgrid[:side, :side]
        masks = np.stack([((yy - side / 2) ** 2 + (xx - rng.uniform(0.3, 0.7) * side) ** 2 < (side / 4) ** 2)
                          for _ in range(n)]).astype(np.uint8)
        return list(images), list(masks), f"synthetic (no data at {root})"
    names = json.loads(splits.read_text())[split][:n]
    if len(names) < n:
        raise ValueError(f"split {split!r} of {root} has {len(names)} images, {n} requested.")
    images, masks = [], []
    for name in names:
        image = Image.open(root / "images" / f"{name}.jpg").convert("RGB")
        mask = Image.open(root / "masks" / f"{name}.png")
        if size is not None:
            image = image.resize((size, size), Image.BILINEAR)
            mask = mask.resize((size, size), Image.NEAREST)
        images.append(np.array(image, dtype=np.uint8))
        masks.append(np.array(mask, dtype=np.uint8))
    return images, (masks if with_masks else None), f"weizmann_horse/{split}[:{n}]"


def adm256_unet(base_channels=256, seed=0, image_size=256):
    """A random-init ADM-256-shaped ``UNet2DModel`` (18 decoder blocks, the paper's block layout).

    ``base_channels=256`` is the paper's 552.8 M-parameter model; smaller widths keep the
    blocks and resolutions at a fraction of the compute. ``image_size`` below 256 keeps the six
    levels (channel multipliers of the 256 model) at a smaller resolution, for quick runs.
    """
    import torch
    from diffusers import UNet2DModel

    from sklearn_ddpm.backbone import adm_unet_config

    groups = 32 if base_channels % 32 == 0 else 8
    config = adm_unet_config(256, base_channels=base_channels, norm_num_groups=groups,
                             head_dim=64 if base_channels >= 64 else 8)
    # The layers do not depend on sample_size: a smaller one keeps the 256 model's levels and
    # attention placement at a smaller input, for quick runs.
    config["sample_size"] = image_size
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return UNet2DModel(**config).eval()


def describe_model(unet):
    cfg = unet.config
    return {
        "sample_size": cfg.sample_size,
        "block_out_channels": list(cfg.block_out_channels),
        "parameters_M": round(sum(p.numel() for p in unet.parameters()) / 1e6, 2),
        "weights_bytes_fp32": int(sum(p.numel() for p in unet.parameters()) * 4),
    }
