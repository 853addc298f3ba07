"""One entry point for the benchmarks, grouped by the question each answers.

Each benchmark is still its own script (``benchmarks/NAME.py``, writing ``results/NAME.json`` through
``_common.write_json``); this runner lists them by question and runs one or a whole group with the
same options::

    python benchmarks/run.py --list                  # every benchmark, by question
    python benchmarks/run.py weizmann --quick        # one benchmark (any further options go to it)
    python benchmarks/run.py speed --quick           # every benchmark of a group, one after the other
"""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# question -> benchmarks (script names); tests/benchmarks/test_run.py checks that every script is here
GROUPS = {
    "accuracy": ["weizmann", "weizmann_levers", "weizmann_backbones", "large_batch_rule", "ccp", "ccp_cv_protocol", "ccp_backbones",
                 "synthetic", "scribbles", "active_learning", "pixel_caps", "select_settings", "tiling_ccp",
                 "nan_dead_units", "standardize_default", "rare_classes", "self_training"],
    "speed": ["extract", "ensemble", "gridsearch", "cpu_inference", "cpu_training", "presets", "latent_extract",
              "refit_latency", "refit_warm_start", "refit_batch", "tiling", "cli_example", "default_fit",
              "ensemble_speed"],
    "memory": ["memory", "latent_memory", "large_image_cli"],
    "scale": ["ddp_training", "distributed_predict", "compute_curve", "soak"],
    "gpu": ["gpu_check"],
    "usability": ["new_user_journey"],
}
# not benchmarks: helpers, this runner, the report, and the ddof=1 recomputation of old records
NOT_BENCHMARKS = {"run", "report", "recompute_std"}


def scripts():
    """Every benchmark script in the folder (public ``*.py`` that are not helpers)."""
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and p.stem not in NOT_BENCHMARKS)


def resolve(name):
    """The benchmarks ``name`` stands for: a group's, or the one script of that name."""
    if name in GROUPS:
        return [s for s in GROUPS[name] if (HERE / f"{s}.py").is_file()]
    if (HERE / f"{name}.py").is_file() and name in scripts():
        return [name]
    known = ", ".join([*GROUPS, *scripts()])
    raise SystemExit(f"unknown benchmark or group {name!r}; one of: {known}")


def run(name, argv):
    """Run ``benchmarks/NAME.py`` with ``argv`` as if from the command line; its exit status (0 = done)."""
    path = HERE / f"{name}.py"
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *argv]
    sys.path.insert(0, str(HERE))
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(__doc__.split("\n\n")[0])
        for group, names in GROUPS.items():
            print(f"  {group:9s} {', '.join(n for n in names if (HERE / f'{n}.py').is_file())}")
        return 0
    failed = []
    for name in resolve(argv[0]):
        print(f"== {name} {' '.join(argv[1:])}", flush=True)
        if run(name, argv[1:]) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
