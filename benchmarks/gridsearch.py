"""Wall time of a 3x3 ``GridSearchCV`` over blocks x steps, with and without the activation cache.

A grid over the transformer's ``blocks`` and ``steps`` refits the pipeline for every candidate and
fold; with the cache, a (image, timestep, block) activation the UNet already produced is reused.
UNet work is counted exactly with a forward pre-hook (``forwards`` = calls, ``forward_rows`` =
image-steps run through the UNet), next to the cache's hits and misses.

Configurations, same run, same data and model:

- ``memory=None``: no cache (the default);
- ``memory=ActivationCache()``: an in-memory cache object passed as the parameter; every clone
  ``GridSearchCV`` makes shares it;
- ``memory=<directory>``: the on-disk cache (a fresh temporary folder).

The cached runs must give the very scores of the uncached one (``scores_identical``): every
forward pass of a call has the same size, so a cached activation is the one the UNet would give.

Examples
--------
    python benchmarks/gridsearch.py
    python benchmarks/gridsearch.py --quick
"""

import sys
import time

import _common

NAME = "gridsearch"


class ForwardCounter:
    """Counts UNet forward calls and the batch rows they carry."""

    def __init__(self, unet):
        self.calls = 0
        self.rows = 0
        self.handle = unet.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.calls += 1
        self.rows += int(args[0].shape[0])


def run_grid(unet, images, masks, memory, blocks_grid, steps_grid, classifier_params, device):
    from sklearn.model_selection import GridSearchCV, KFold

    from sklearn_ddpm import make_segmenter
    from sklearn_ddpm.backbone import load_backbone

    # Clones share the Backbone, so all candidates run the very UNet the counter watches.
    backbone = load_backbone(unet)
    counter = ForwardCounter(backbone.unet)
    pipe = make_segmenter(backbone, memory=memory, device=device, batch_size=4, random_state=0)
    pipe.set_params(**{f"clf__{name}": value for name, value in classifier_params.items()})
    search = GridSearchCV(pipe, {"features__blocks": blocks_grid, "features__steps": steps_grid},
                          cv=KFold(2), refit=False, n_jobs=1, error_score="raise")
    start = time.perf_counter()
    _common.synchronize(device)
    search.fit(images, masks)
    _common.synchronize(device)
    seconds = time.perf_counter() - start
    counter.handle.remove()
    return search, seconds, counter


def main(argv=None):
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    import tempfile

    from sklearn_ddpm.features import ActivationCache

    if args.quick:
        base, model_size, n_images, image_size = 8, 32, 4, 48
        classifier = dict(n_estimators=2, max_epochs=1, max_pixels_per_image=100, patience=None)
    else:
        base, model_size, n_images, image_size = 32, 64, 8, 128
        classifier = dict(n_estimators=3, max_epochs=2, max_pixels_per_image=1000, patience=None)
    blocks_grid = [(6,), (8,), (6, 8, 12)]
    steps_grid = [(50,), (150,), (50, 150, 250)]
    images, masks, source = _common.horse_data("labeled_pool", n_images, image_size)
    rows = []
    with _common.torch_threads(args.threads):
        unet = _common.adm256_unet(base, image_size=model_size).to(device)
        model = {**_common.describe_model(unet), "data": source}
        scores = {}
        directory = tempfile.TemporaryDirectory(prefix="sklearn-ddpm-cache-")
        # The directory is passed as an ActivationCache over it, so its hits can be counted.
        for label, cache in [("none", None), ("ActivationCache()", ActivationCache()),
                             ("directory", ActivationCache(max_bytes=0, directory=directory.name))]:
            search, seconds, counter = run_grid(unet, images, masks, cache, blocks_grid, steps_grid, classifier,
                                                device)
            scores[label] = search.cv_results_["mean_test_score"].tolist()
            rows.append({"memory": label, "seconds": seconds, "forwards": counter.calls,
                         "forward_rows": counter.rows,
                         "cache_hits": cache.hits if cache is not None else None,
                         "cache_misses": cache.misses if cache is not None else None,
                         "best_params": str(search.cv_results_["params"][int(search.cv_results_["rank_test_score"].argmin())]),
                         "best_mIoU": float(max(scores[label]))})
    for row in rows:
        row["speedup_vs_none"] = rows[0]["seconds"] / row["seconds"]
        directory.cleanup()
    same = all(scores[k] == scores["none"] for k in scores)
    differences = {k: max(abs(a - b) for a, b in zip(v, scores["none"])) for k, v in scores.items()}
    _common.print_table(rows, ["memory", "seconds", "speedup_vs_none", "forwards", "forward_rows", "cache_hits",
                               "cache_misses", "best_mIoU"],
                        title=f"GridSearchCV 3x3 (blocks x steps), cv=2, {n_images} images ({source}), {device}, "
                              f"ADM layout width {base} at {model_size}² ({model['parameters_M']} M params)")
    print(f"cv scores identical with and without cache: {same} (largest difference {max(differences.values()):.4f})")
    payload = {"device": device, "quick": args.quick, "model": model, "n_images": n_images,
               "image_size": image_size, "blocks_grid": blocks_grid, "steps_grid": steps_grid,
               "classifier": classifier, "rows": rows, "scores": scores, "scores_identical": same,
               "max_score_difference": differences}
    return _common.write_json(NAME, payload, args.out, device)


if __name__ == "__main__":
    main(sys.argv[1:])
