"""Where ``examples/demo.py``'s seconds go: run it with a timer around each of its stages.

Run by ``cpu_inference.py --part profile`` in a fresh process, so that the imports are timed too:
``python benchmarks/_demo_profile.py DEMO_ARGS...`` runs the demo with those arguments and prints,
as its last line, a JSON object ``{stage: {"wall_s", "cpu_s", "calls"}}``. CPU seconds (this
process's user + system time) move less with the machine's load than wall seconds.
"""

import functools
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

STAGES = defaultdict(lambda: {"wall_s": 0.0, "cpu_s": 0.0, "calls": 0})


class _Stage:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        stage = STAGES[self.name]
        stage["wall_s"] += time.perf_counter() - self.wall
        stage["cpu_s"] += time.process_time() - self.cpu
        stage["calls"] += 1


def _timed(owner, attribute, name):
    """Replace ``owner.attribute`` by the same callable, timed as stage ``name``."""
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        with _Stage(name):
            return original(*args, **kwargs)

    setattr(owner, attribute, timed)


def main(demo_args):
    with _Stage("total"):
        with _Stage("import torch"):
            import torch  # noqa: F401
        with _Stage("import diffusers (UNet2DModel)"):
            from diffusers import UNet2DModel  # noqa: F401
        with _Stage("import sklearn_ddpm and the demo"):
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
            import demo

            from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier
            from sklearn_ddpm.ensemble import _classifier
            from sklearn_ddpm.postprocessing import GuidedFilter
        for owner, attribute, name in [
            (demo, "load_horses", "load the bundled horses"),
            (DDPMFeatureTransformer, "fit_transform", "features of the training horses"),
            (MLPEnsembleClassifier, "fit", "train the ensemble"),
            (DDPMFeatureTransformer, "transform", "features of the test horses"),
            (MLPEnsembleClassifier, "_member_probabilities", "members' probabilities (prediction)"),
            (GuidedFilter, "refine", "guided filter"),
            (_classifier, "js_uncertainty", "uncertainty maps"),
            (demo, "overlay", "draw overlays"),
            (demo, "atomic_save_image", "write PNGs"),
        ]:
            _timed(owner, attribute, name)
        demo.main(demo_args)
    print(json.dumps(STAGES))


if __name__ == "__main__":
    main(sys.argv[1:])
