"""Demo: segment horses with the bundled DDPM backbone and 10 labelled images.

Runs offline on a CPU in a few minutes (``make demo``): loads the small DDPM that ships with the
package and the bundled Weizmann horse sample, fits the pipeline on the 10 ``train`` horses,
predicts the 10 held-out ``test`` horses, prints mIoU, and writes PNG label masks and colour
overlays (image + mask + uncertainty) to the output folder.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.pipeline import Pipeline

from sklearn_ddpm import DDPMFeatureTransformer, MLPEnsembleClassifier, miou_score, per_class_iou
from sklearn_ddpm.datasets import load_horses
from sklearn_ddpm.plotting import overlay
from sklearn_ddpm.utils._atomic import atomic_save_image


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
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    train, test = load_horses("train"), load_horses("test")
    print(f"bundled data: {len(train.images)} labelled training horses, {len(test.images)} test horses")
    pipe = Pipeline(
        [
            ("features", DDPMFeatureTransformer(steps=(50, 150, 250), device=args.device, progress=True)),
            (
                "clf",
                MLPEnsembleClassifier(
                    n_estimators=args.n_estimators,
                    random_state=0,
                    device=args.device,
                    verbose=1,
                    max_pixels_per_image=args.max_pixels_per_image or None,
                ),
            ),
        ]
    )
    start = time.perf_counter()
    pipe.fit(train.images, train.masks)
    features = pipe.named_steps["features"]
    print(
        f"backbone: {features.backbone_}; blocks {features.blocks_}, steps {features.steps_}, "
        f"{features.n_features_out_} features per pixel"
    )
    print(f"fit: {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    test_features = features.transform(test.images)
    clf = pipe.named_steps["clf"]
    predictions, uncertainty = clf.predict_with_uncertainty(test_features)
    print(f"predict: {time.perf_counter() - start:.1f} s")

    ious = per_class_iou(test.masks, predictions)
    majority = miou_score(test.masks, [np.zeros_like(m) for m in test.masks])
    print(
        f"test mIoU: {100 * miou_score(test.masks, predictions):.1f}  "
        f"(background {100 * ious[0]:.1f}, horse {100 * ious[1]:.1f}; all-background baseline {100 * majority:.1f})"
    )

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, image, labels, js in zip(test.names, test.images, predictions, uncertainty):
        atomic_save_image(Image.fromarray(labels.astype(np.uint8)), out / f"{name}_mask.png")
        picture = overlay(image, labels, uncertainty=js, class_names=train.class_names)
        atomic_save_image(Image.fromarray(picture), out / f"{name}_overlay.png")
    print(f"wrote {len(test.names)} label masks and overlays to {out}/")


if __name__ == "__main__":
    main()
