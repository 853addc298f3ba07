"""What the example scripts share: where the project's data sets are, and the JSON record of a run.

The package itself does not know the repository layout; the examples that use the project's data
sets find them here, next to the repository (``../shared/data``). Every example that prints a figure
quoted in README.md or docs/ also writes it, with the settings and the machine, to a JSON record.
"""

import json
import os
import platform
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data(name):
    """Folder of the project's data set ``name`` (e.g. ``"ccp_clothing"``): ``<repo>/../shared/data/<name>``."""
    return REPO_ROOT / ".." / "shared" / "data" / name


# Set by docs/conf.py for the gallery: `make docs` runs every plot_*.py, on a 2-core CPU, so each example
# then runs a smaller but real version of its study (fewer cells, seeds or severities; the same code).
QUICK_ENV = "SKLEARN_DDPM_EXAMPLES_QUICK"


def figure_arguments(name, description, record=True):
    """The arguments of a ``plot_*.py`` script, parsed; the output folder is created.

    ``--output DIR`` (the PNG, default ``examples/output``), ``--record PATH`` (the JSON, default
    ``OUTPUT/NAME.json``; only for a script that writes one, ``record=True``) and ``--quick``
    (smaller settings; the default when the environment variable ``SKLEARN_DDPM_EXAMPLES_QUICK``
    is ``1``, as in the documentation build).
    """
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "output",
                        help=f"folder for {name}.png (default: examples/output)")
    if record:
        parser.add_argument("--record", type=Path, default=None, help=f"JSON record (default: OUTPUT/{name}.json)")
    parser.add_argument("--quick", action="store_true", default=os.environ.get(QUICK_ENV) == "1",
                        help=f"smaller settings, as the documentation's gallery runs it ({QUICK_ENV}=1)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    if record:
        args.record = args.record or args.output / f"{name}.json"
    return args


def write_record(path, script, payload):
    """Write ``payload`` with the script's name, the date and the machine to the JSON file ``path``."""
    import torch

    from sklearn_ddpm.utils._atomic import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    machine = {
        "cpu": cpu,
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    record = {"script": f"examples/{script}", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": machine, **payload}
    record.setdefault("backbone_sha256", _backbone_sha256(payload))
    with atomic_write(path, "w") as f:
        # numpy scalars and arrays become numbers and lists; anything else its str()
        f.write(json.dumps(record, indent=2, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)) + "\n")
    print(f"wrote {path}")
    return path


def _backbone_sha256(payload):
    """The content hash of the backbone the payload names (benchmarks/_common.py owns the definition)."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import _common
    finally:
        sys.path.pop(0)
    return _common.backbone_sha256(_common.backbone_source(payload))
