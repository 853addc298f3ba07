"""Seconds per image of feature extraction: the reference implementation's way vs ``DDPMFeatureTransformer``.

Paper configuration: ADM-256-shaped UNet, blocks 5,6,7,8,12, steps 50,150,250.

- ``reference``: as the reference code does it — float32, one image at a time, the whole UNet
  run for each step with hooks on the blocks, every activation upsampled to 256² with
  ``F.interpolate(mode="bilinear")``, concatenated into a dense ``(D, 256, 256)`` tensor and
  copied to the host. Written here, so the baseline does not depend on the package.
- ``ours``: ``DDPMFeatureTransformer`` with compact output, images batched, the UNet stopped after
  the deepest wanted block, ``memory=None`` so no cache helps; bf16 autocast on CUDA.

Both run in the same process on the same images and model. On a CPU the full-width model
(552.8 M parameters) is too slow for more than a handful of forwards, so a reduced-width UNet of
the same block layout and resolutions is used there (``--base-channels``); on CUDA the full
width.

Examples
--------
    python benchmarks/extract.py
    python benchmarks/extract.py --device cuda
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

import _common

NAME = "extract"
BLOCKS = (5, 6, 7, 8, 12)
STEPS = (50, 150, 250)


def reference_features(unet, scheduler, image, blocks, steps, noise, device):
    """Dense ``(D, H, W)`` float32 features of one image on the host, the reference's way."""
    from sklearn_ddpm.backbone import decoder_block_modules
    from sklearn_ddpm.features._extraction import to_model_input

    taps = decoder_block_modules(unet)
    captured = {}
    handles = [taps[b][1].register_forward_hook(
        lambda module, args, output, b=b: captured.__setitem__(b, output[0] if isinstance(output, tuple) else output))
        for b in blocks]
    x0 = to_model_input(image[None]).to(device)
    size = image.shape[:2]
    per_layer = []
    try:
        with torch.no_grad():
            for t in steps:
                t_batch = torch.tensor([t], device=device)
                x_t = scheduler.add_noise(x0, noise.to(device), t_batch)
                unet(x_t, t_batch)
                for b in blocks:
                    per_layer.append(F.interpolate(captured[b].float(), size=size, mode="bilinear"))
            dense = torch.cat(per_layer, dim=1)[0]
    finally:
        for handle in handles:
            handle.remove()
    return dense.cpu()


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--base-channels", type=int, default=None,
                   help="UNet width (256 = the paper's ADM-256); default 256 on CUDA, 64 on CPU")
    p.add_argument("--n-images", type=int, default=None, help="images per method")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward for ours")
    args = p.parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return skipped
    cuda = device == "cuda"
    if args.quick:
        base, size, n_images, batch = 8, 64, 2, 2
    else:
        base, size = (256 if cuda else 64), 256
        n_images, batch = (64, 16) if cuda else (3, 3)
    base = args.base_channels or base
    n_images = args.n_images or n_images
    batch = args.batch_size or batch
    with _common.torch_threads(args.threads):
        rows, model = run(device, base, size, n_images, batch)
    for row in rows:
        row["speedup_vs_reference"] = rows[0]["seconds_per_image"] / row["seconds_per_image"]
    _common.print_table(rows, ["method", "precision", "batch", "images", "seconds", "seconds_per_image",
                               "speedup_vs_reference", "output_MB_per_image", "max_abs_diff_vs_reference"],
                        title=f"feature extraction ({device}; ADM-256 layout, width {base}, "
                              f"{model['parameters_M']} M params, {size}², blocks {BLOCKS}, steps {STEPS})")
    payload = {"device": device, "quick": args.quick, "model": model, "image_size": size, "blocks": BLOCKS,
               "steps": STEPS, "rows": rows}
    return _common.write_json(NAME, payload, args.out, device)


def run(device, base, size, n_images, batch):
    from sklearn_ddpm import DDPMFeatureTransformer
    from sklearn_ddpm.backbone import load_backbone
    from sklearn_ddpm.features._extraction import noise_for, resize_images

    cuda = device == "cuda"
    images, _, source = _common.horse_data("unlabeled", n_images, size, with_masks=False)
    unet = _common.adm256_unet(base, image_size=size).to(device)
    model = {**_common.describe_model(unet), "data": source}
    backbone = load_backbone(unet)
    resized = resize_images(images, (size, size))
    noise = noise_for(0, 0, 0, (3, size, size), per_step=False)[None]
    rows = []

    if cuda:  # first-call costs (kernel selection, allocator) are not what is compared
        reference_features(unet, backbone.scheduler, resized[0], BLOCKS, STEPS, noise, device)
    with _common.stopwatch(device) as clock:
        for i, image in enumerate(resized):
            dense = reference_features(unet, backbone.scheduler, image, BLOCKS, STEPS, noise, device)
            n_features = dense.shape[0]
            if i == 0:  # kept to check below that both ways compute the same features
                first = dense[:, ::4, ::4].clone()
            del dense
    rows.append({"method": "reference", "precision": "fp32", "batch": 1, "images": n_images,
                 "seconds": clock["seconds"], "output_MB_per_image": n_features * size * size * 4 / 1e6})

    variants = [("ours", "bf16 autocast" if cuda else "fp32", "bfloat16" if cuda else None)]
    if cuda:
        variants.append(("ours", "fp32", None))
    for method, precision, autocast in variants:
        transformer = DDPMFeatureTransformer(backbone, blocks=BLOCKS, steps=STEPS, batch_size=batch, memory=None,
                                             device=device, autocast_dtype=autocast).fit(images)
        if cuda:
            transformer.transform(images[:batch])
        with _common.stopwatch(device) as clock:
            compact = transformer.transform(images)
        # same noise (seed 0, shared) and same resize, so dense features must agree up to precision
        ys, xs = (a.ravel() for a in np.mgrid[0:size:4, 0:size:4])
        ours = compact.gather(np.zeros(len(ys), dtype=np.int64), ys, xs).T.reshape(first.shape)
        rows.append({"method": method, "precision": precision, "batch": batch, "images": n_images,
                     "seconds": clock["seconds"], "output_MB_per_image": compact.nbytes / n_images / 1e6,
                     "max_abs_diff_vs_reference": float((ours - first).abs().max()),
                     "max_abs_reference": float(first.abs().max())})
        del compact
    for row in rows:
        row["seconds_per_image"] = row["seconds"] / row["images"]
    return rows, model


if __name__ == "__main__":
    main(sys.argv[1:])
