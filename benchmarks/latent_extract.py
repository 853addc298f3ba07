"""Seconds per image and peak memory of feature extraction with a full-size, random-init SD-1.5 backbone.

The UNet, VAE and CLIP text encoder have SD-1.5's shapes (benchmarks/latent_memory.py's configs)
with random weights: speed and memory do not depend on the values. The tokenizer is a stand-in
with a two-token vocabulary (the prompt is empty). Each preset (``"dift"``: block 5, step 261, 8
noise draws; ``"paper"``: blocks "auto" = 3, 4, 5, 8 at steps 50, 150, 250) runs
``DDPMFeatureTransformer.transform`` on ``--n-images`` 512² images in one call (batch = all of
them), after a one-image warm-up call (text embedding, first-call costs). On CUDA the UNet runs
under bfloat16 autocast with bfloat16 weights; on the CPU in float32.

Examples
--------
    python benchmarks/latent_extract.py --threads 2        # CPU: minutes
    python benchmarks/latent_extract.py --device cuda      # a GPU: seconds
    python benchmarks/latent_extract.py --quick            # tiny configs (smoke test)
"""

import json
import os
import tempfile

import _common
from latent_memory import sd15_configs

NAME = "latent_extract"


def random_sd15(quick):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from sklearn_ddpm.backbone import LatentBackbone

    unet_kwargs, vae_kwargs, text_kwargs = sd15_configs(quick)
    torch.manual_seed(0)
    unet, vae = UNet2DConditionModel(**unet_kwargs).eval(), AutoencoderKL(**vae_kwargs).eval()
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_kwargs)).eval()
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "vocab.json"), "w") as f:
            json.dump({"<|startoftext|>": 0, "<|endoftext|>": 1}, f)
        with open(os.path.join(folder, "merges.txt"), "w") as f:
            f.write("#version: 0.2\n")
        tokenizer = CLIPTokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
                                  model_max_length=77)
    return LatentBackbone(unet, vae, text_encoder, tokenizer, source="random-init SD-1.5 shapes")


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--n-images", type=int, default=None, help="images per timed call (default: 1 CPU, 8 CUDA)")
    args = p.parse_args(argv)
    device, skipped = _common.benchmark_device(NAME, args)
    if skipped:
        return None
    import numpy as np
    import torch

    from sklearn_ddpm import DDPMFeatureTransformer
    from sklearn_ddpm.features import FEATURE_PRESETS

    cuda = device.startswith("cuda")
    n_images = args.n_images or (8 if cuda else 1)
    size = 64 if args.quick else 512
    rows = []
    with _common.torch_threads(args.threads):
        backbone = random_sd15(args.quick)
        images = np.random.default_rng(0).integers(0, 256, (n_images, size, size, 3), dtype=np.uint8)
        for name in ("dift", "paper"):
            transformer = DDPMFeatureTransformer(
                backbone, **FEATURE_PRESETS[name], image_size=size, batch_size=n_images, device=device,
                autocast_dtype="bfloat16" if cuda else None).fit(images)
            transformer.transform(images[:1])  # warm-up: text embedding, device copies, kernels
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            with _common.stopwatch(device) as timing:
                features = transformer.transform(images)
            rows.append({
                "preset": name, "blocks": list(transformer.blocks_), "steps": list(transformer.steps_),
                "n_noise_samples": transformer.n_noise_samples, "n_images": n_images, "image_size": size,
                "unet_forwards_per_image": len(transformer.steps_) * transformer.n_noise_samples,
                "seconds": timing["seconds"], "seconds_per_image": timing["seconds"] / n_images,
                "feature_bytes_per_image": features.nbytes / n_images,
                "cuda_peak_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            })
    record = {"device": device, "threads": args.threads, "quick": args.quick, "load_average": os.getloadavg(),
              "peak_rss_bytes": _common.peak_rss_bytes(), "rows": rows,
              "note": "random-init weights with SD-1.5's shapes; timings on a shared machine are noisy"}
    path = _common.write_json(NAME, record, args.out, device=device)
    for row in rows:
        print(f"{row['preset']:>6}: {row['seconds_per_image']:.2f} s/image ({row['unet_forwards_per_image']} UNet "
              f"forwards each, {n_images} images of {size}², {device})")
    print(f"peak RSS {record['peak_rss_bytes'] / 2**30:.2f} GiB; wrote {path}")
    return record


if __name__ == "__main__":
    main()
