"""Demo: segment horses with the bundled DDPM backbone and 10 labelled images.

Runs offline on a CPU in a few minutes (``make demo``): loads the small DDPM that ships with the
package and the bundled Weizmann horse sample, fits the pipeline on the 10 ``train`` horses,
predicts the 10 held-out ``test`` horses, prints mIoU, and writes PNG label masks and colour
overlays (image + mask + uncertainty) to the output folder, and the figures (mIoU, per-class IoU,
timings, settings, machine) to ``demo.json`` there (``--record`` elsewhere). The pipeline is the
package's default one (:func:`sklearn_ddpm.make_segmenter`, guided-filter refinement included),
except that it trains on 1000 sampled pixels per image (``--max-pixels-per-image``; the default
uses all labelled pixels).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sklearn_ddpm import make_segmenter, miou_score, per_class_iou
from sklearn_ddpm.datasets import load_horses
from sklearn_ddpm.plotting import overlay
from sklearn_ddpm.utils._atomic import atomic_save_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_record  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="demo_output", help="folder for masks and overlays")
    parser.add_argument("--n-estimators", type=int, default=10)
    parser.add_argument(
        "--max-pixels-per-image",
        type=int,
        default=1000,
        help="training pixels sampled per image (all labelled pixels: 0)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--record", default=None, help="JSON record of the run (default: OUTPUT/demo.json)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)

    train, test = load_horses("train"), load_horses("test")
    print(f"bundled data: {len(train.images)} labelled training horses, {len(test.images)} test horses")
    # progress=True: one bar per stage (features, the ensemble's epochs), as the CLI shows; skorch's
    # verbose epoch tables and per-batch bars would flood the console.
    pipe = make_segmenter(n_estimators=args.n_estimators, max_pixels_per_image=args.max_pixels_per_image or None,
                          device=args.device, random_state=0, progress=True)
    start = time.perf_counter()
    pipe.fit(train.images, train.masks)
    fit_seconds = time.perf_counter() - start
    features = pipe.named_steps["features"]
    print(
        f"backbone: {features.backbone_}; blocks {features.blocks_}, steps {features.steps_}, "
        f"{features.n_features_out_} features per pixel"
    )
    print(f"fit: {fit_seconds:.1f} s")

    start = time.perf_counter()
    test_features = features.transform(test.images)
    clf = pipe.named_steps["clf"]
    predictions, uncertainty = clf.predict_with_uncertainty(test_features)
    predict_seconds = time.perf_counter() - start
    print(f"predict: {predict_seconds:.1f} s")

    ious = per_class_iou(test.masks, predictions)
    majority = miou_score(test.masks, [np.zeros_like(m) for m in test.masks])
    miou = miou_score(test.masks, predictions)
    print(
        f"test mIoU: {100 * miou:.1f}  "
        f"(background {100 * ious[0]:.1f}, horse {100 * ious[1]:.1f}; all-background baseline {100 * majority:.1f})"
    )

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, image, labels, js in zip(test.names, test.images, predictions, uncertainty):
        # zlib level 1: a quarter of the default's time, about the same size for photographs
        atomic_save_image(Image.fromarray(labels.astype(np.uint8)), out / f"{name}_mask.png", compress_level=1)
        picture = overlay(image, labels, uncertainty=js, class_names=train.class_names)
        atomic_save_image(Image.fromarray(picture), out / f"{name}_overlay.png", compress_level=1)
    print(f"wrote {len(test.names)} label masks and overlays to {out}/")
    write_record(args.record or out / "demo.json", "demo.py", {
        "data": {"train": train.names, "test": test.names},
        "settings": {"backbone": str(features.backbone_), "blocks": features.blocks_, "steps": features.steps_,
                     "n_features": features.n_features_out_, "n_estimators": args.n_estimators,
                     "max_pixels_per_image": args.max_pixels_per_image, "refine": repr(clf.refine),
                     "batch_size": features.batch_size, "random_state": 0,
                     "device": args.device, "threads": torch.get_num_threads()},
        "test_miou": 100 * miou,
        "test_iou_per_class": {name: 100 * float(v) for name, v in zip(train.class_names, ious)},
        "all_background_miou": 100 * majority,
        "seconds": {"fit": fit_seconds, "predict": predict_seconds,
                    "total": time.perf_counter() - started},
    })


if __name__ == "__main__":
    main()
