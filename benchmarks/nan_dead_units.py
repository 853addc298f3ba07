"""Dead pixel-MLP units and NaN probabilities on all the pixels of two CCP photos (issue 26, item 1).

A user's default fit (all labelled pixels, two 512-px face photos, 19 declared classes, 14
present) left 712 of 1,280 first-layer units dead and predicted NaN probabilities: untrained
classes were zeroed after the softmax and the rest renormalised, 0/0 where an untrained class took
all the mass. This benchmark reproduces that on the project's own data and asks why units die.

- Data: the first two ``labeled_pool`` photos of CCP with the 59 fine classes, every labelled
  pixel (``max_pixels_per_class=None``, ``max_pixels_per_image=None``), ``n_classes=59`` declared;
  the bundled horse DDPM (there is no CCP backbone in this workspace). Held-out photos: the next
  ``--held-out`` photos of ``labeled_pool`` (never ``test``).
- Phase ``fit``: ``make_segmenter`` as the CLI builds it (guided-filter refinement) with
  ``--members`` members. Per fitted model: dead units per member and layer, as BatchNorm running
  variance < 1e-12 and as "ReLU output 0 on every training pixel" (eval mode, measured over all
  training pixels); the minimum running variance; on the held-out photos the fraction of pixels
  with a NaN probability under the OLD formula (softmax over all classes, untrained classes zeroed,
  renormalised: reimplemented here from the members' logits) against the package's current
  ``predict_proba``, and the old and current ``predict`` (all class 0?).
- Phase ``dynamics``: the same batched module trained by a plain loop that does what the
  classifier's fit does (every member its own shuffled order, batch 64, fused Adam, summed
  per-member mean cross-entropy, BatchNorm in training mode), for a fixed number of steps
  (``--epochs`` passes over all pixels: the reference's stop rule ends a fit soon after epoch 4),
  recording dead units against steps on a fixed probe of training pixels. Variants test the
  hypotheses: learning rate (1e-4), standardized input, init scale, optimizer (SGD), and the
  number of steps against the data (a 500-per-class sample run for as many steps).

Writes ``benchmarks/results/nan_dead_units.json``; each phase and variant is kept on a rerun.
"""

import json
import time

import numpy as np

from _common import DATA_DIR, REPO_ROOT, RESULTS_DIR, machine, parser, torch_threads, write_json

BUNDLED_MODEL = REPO_ROOT / "sklearn_ddpm" / "_data" / "horse_ddpm"
DEAD_VAR = 1e-12
OLD_FORMULA = ("OLD (before commit a3b0528): p = softmax(logits over all classes); p[untrained] = 0; p /= p.sum(); "
               "reimplemented in this script from the members' eval-mode logits")


def _load(n):
    from sklearn_ddpm.datasets import load_ccp_clothing

    return load_ccp_clothing(DATA_DIR / "ccp_clothing", split="labeled_pool", coarse=False, n=n)


def _dense(features, image_index, ys, xs, chunk=32768):
    """Features of the given pixels, ``(n, d)`` float32, gathered in chunks."""
    import torch

    return torch.cat([features.gather(image_index[s:s + chunk], ys[s:s + chunk], xs[s:s + chunk]).float()
                      for s in range(0, len(ys), chunk)])


def _relu_max(module, x, chunk=16384):
    """Per layer, the largest eval-mode ReLU output of every (member, unit) over the rows of ``x``."""
    import torch
    import torch.nn.functional as F

    module.eval()
    peaks = None
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            h = torch.matmul(x[s:s + chunk].unsqueeze(0), module.weights[0]) + module.biases[0][:, None, :]
            maxima = []
            for k in range(1, len(module.weights)):
                h = F.relu(h)
                maxima.append(h.amax(1))  # (M, width)
                n_members, batch, width = h.shape
                norm = module.norms[k - 1]
                flat = F.batch_norm(h.permute(1, 0, 2).reshape(batch, -1), norm.running_mean, norm.running_var,
                                    norm.weight, norm.bias, training=False, eps=norm.eps)
                h = torch.matmul(flat.reshape(batch, n_members, width).permute(1, 0, 2), module.weights[k])
                h = h + module.biases[k][:, None, :]
            peaks = maxima if peaks is None else [torch.maximum(a, b) for a, b in zip(peaks, maxima)]
    return peaks


def _dead_units(module, x=None):
    """Dead units per layer and member: running variance < 1e-12 and, with ``x``, ReLU output 0 on all rows."""
    out = []
    peaks = _relu_max(module, x) if x is not None else None
    for k, norm in enumerate(module.norms):
        var = norm.running_var.reshape(module.n_members, -1)
        row = {"layer": k + 1, "units_per_member": int(var.shape[1]),
               "running_var_below_1e-12": (var < DEAD_VAR).sum(1).tolist(),
               "min_running_var": float(var.min())}
        if peaks is not None:
            row["relu_zero_on_all_pixels"] = (peaks[k] == 0).sum(1).tolist()
        out.append(row)
    return out


def _old_probabilities(logits, untrained):
    """The OLD formula (:data:`OLD_FORMULA`), kept only here to measure what it did."""
    import torch

    p = torch.softmax(logits.float(), -1)
    p[..., untrained] = 0
    return p / p.sum(-1, keepdim=True)


def _without_dead_units(module):
    """A copy of ``module`` whose dead units (running variance < 1e-12) have BatchNorm gain 0."""
    import copy

    import torch

    pruned = copy.deepcopy(module).eval()
    with torch.no_grad():
        for norm in pruned.norms:
            norm.weight[norm.running_var < DEAD_VAR] = 0
    return pruned


def _held_out(pipe, images, masks, train_x_max_logit):
    """Old formula against the package's predict_proba / predict on each held-out photo."""
    import torch

    from sklearn_ddpm.ensemble._voting import majority_vote
    from sklearn_ddpm.metrics import miou_score

    clf = pipe.named_steps["clf"]
    module = clf.net_.module_.eval()
    untrained = torch.as_tensor(~clf.trained_classes_)
    features = pipe.named_steps["features"].transform(images)
    rows, old_pred, new_pred, pruned_pred = [], [], [], []
    pruned = _without_dead_units(module)
    for i, (image, mask) in enumerate(zip(images, masks)):
        height, width = mask.shape
        ys, xs = np.divmod(np.arange(height * width), width)
        logits = []
        with torch.no_grad():
            for s in range(0, len(ys), 16384):
                sl = slice(s, s + 16384)
                logits.append(module(features.gather(np.full(len(ys[sl]), i), ys[sl], xs[sl]).float()))
        logits = torch.cat(logits)  # (n, M, K)
        with torch.no_grad():
            pruned_logits = torch.cat([pruned(features.gather(np.full(len(ys[s:s + 16384]), i), ys[s:s + 16384],
                                                              xs[s:s + 16384]).float())
                                       for s in range(0, len(ys), 16384)])
        pruned_p = _old_probabilities(pruned_logits, untrained)
        current_p = torch.softmax(pruned_logits.masked_fill(untrained, -torch.inf), -1).mean(1).numpy()
        pruned_pred.append(clf.refine.refine(current_p.reshape(height, width, -1), image).argmax(-1)
                           if clf.refine else current_p.argmax(-1).reshape(height, width))
        old = _old_probabilities(logits, untrained)
        nan_pixel = torch.isnan(old).any(-1)  # (n, M)
        mean = old.mean(1)
        vote = majority_vote(old.argmax(-1), old.shape[-1], tie_break=mean).numpy().reshape(height, width)
        refined = clf.refine.refine(mean.numpy().reshape(height, width, -1), image).argmax(-1) if clf.refine else vote
        proba = pipe.predict_proba([image])[0]  # the package, current formula
        current = pipe.predict([image])[0]
        trained_max = logits[..., ~untrained].amax(-1)
        untrained_max = logits[..., untrained].amax(-1) if untrained.any() else None
        rows.append({
            "image": i,
            "pixels": int(height * width),
            "old_nan_pixel_fraction_any_member": float(nan_pixel.any(1).float().mean()),
            "old_nan_pixel_fraction_per_member": nan_pixel.float().mean(0).tolist(),
            "old_vote_class0_fraction": float((vote == 0).mean()),
            "old_refined_predict_class0_fraction": float((refined == 0).mean()),
            "old_refined_predict_all_class0": bool((refined == 0).all()),
            "current_predict_proba_nan_fraction": float(np.isnan(proba).any(-1).mean()),
            "current_predict_proba_max_abs_sum_error": float(np.abs(proba.sum(-1) - 1).max()),
            "current_predict_class0_fraction": float((current == 0).mean()),
            "truth_class0_fraction": float((mask == 0).mean()),
            "max_abs_logit": float(logits.abs().max()),
            "dead_gain_zeroed_max_abs_logit": float(pruned_logits.abs().max()),
            "dead_gain_zeroed_old_nan_pixel_fraction_any_member": float(torch.isnan(pruned_p).any(-1).any(1)
                                                                        .float().mean()),
            "train_pixels_max_abs_logit": train_x_max_logit,
            "pixels_where_an_untrained_class_beats_every_trained_one_by_104_or_more": None
            if untrained_max is None else float(((untrained_max - trained_max) > 104).any(1).float().mean()),
        })
        old_pred.append(refined)
        new_pred.append(current)
    summary = {
        "old_miou_refined": miou_score(list(masks), old_pred) * 100,
        "current_miou": miou_score(list(masks), new_pred) * 100,
        "dead_gain_zeroed_current_formula_miou": miou_score(list(masks), pruned_pred) * 100,
        "dead_gain_zeroed": "a copy of the fitted module whose BatchNorm weight (gain) is 0 for units with running "
                            "variance < 1e-12: on the training pixels those units output their constant bias either "
                            "way; on new pixels their eval gain 1/sqrt(var + eps) = 316 no longer amplifies them",
        "old_nan_pixel_fraction_any_member": float(np.mean([r["old_nan_pixel_fraction_any_member"] for r in rows])),
        "current_predict_proba_nan_fraction": float(np.mean([r["current_predict_proba_nan_fraction"] for r in rows])),
    }
    return rows, summary


def phase_fit(args, data, payload):
    import torch

    from sklearn_ddpm import make_segmenter

    key = f"fit_{args.members}_members"
    if key in payload:
        return
    images, masks = data.images[:2], data.masks[:2]
    pipe = make_segmenter(n_estimators=args.members, n_classes=59, max_pixels_per_class=None,
                          max_pixels_per_image=None, random_state=args.seed, progress=True)
    wall, cpu = time.perf_counter(), time.process_time()
    pipe.fit(images, masks)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    clf = pipe.named_steps["clf"]
    if args.save_fit:
        import joblib

        joblib.dump(pipe, args.save_fit)
    features = pipe.named_steps["features"].transform(images)
    from sklearn_ddpm.ensemble._pixels import select_training_pixels

    image_index, ys, xs, labels, _ = select_training_pixels(masks, 255, "auto")
    x = _dense(features, image_index, ys, xs)
    module = clf.net_.module_.eval()
    with torch.no_grad():
        train_max_logit = max(float(module(x[s:s + 16384]).abs().max()) for s in range(0, len(x), 16384))
    dead = _dead_units(module, x)
    del x
    held = _load(2 + args.held_out)
    if args.quick:
        held.images, held.masks = [im[200:296, 140:204] for im in held.images], [m[200:296, 140:204] for m in held.masks]
    rows, summary = _held_out(pipe, held.images[2:], held.masks[2:], train_max_logit)
    payload[key] = {
        "settings": {"n_estimators": args.members, "n_classes": 59, "max_pixels_per_class": None,
                     "max_pixels_per_image": None, "random_state": args.seed,
                     "other": "make_segmenter() defaults (refine='guided', batch 64, lr 1e-3, reference stop rule)",
                     "note": f"{args.members} members instead of the default 10 to keep the fit affordable"},
        "train_images": data.names[:2], "held_out_images": held.names[2:],
        "classes_present_in_training": np.flatnonzero(clf.trained_classes_).tolist(),
        "n_training_pixels": int(clf.n_training_pixels_), "n_iter": int(clf.n_iter_),
        "stop_epochs": clf.stop_epochs_, "hidden_layer_sizes": list(clf.hidden_layer_sizes_),
        "fit_seconds_wall": wall, "fit_seconds_cpu": cpu, "load_average_after_fit": machine()["load_average_1min"],
        "dead_units": dead, "old_formula": OLD_FORMULA, "held_out": rows, "held_out_summary": summary,
    }


def _train_variant(name, spec, x, labels, probe, args):
    """Train ``spec`` as the classifier's fit would and record dead units against steps."""
    import torch
    import torch.nn.functional as F

    from sklearn_ddpm.ensemble._module import BatchedMLPEnsemble

    torch.manual_seed(0)
    members = args.dyn_members
    module = BatchedMLPEnsemble(members, x.shape[1], 59, (256, 128), seeds=range(members),
                                init_std=spec.get("init_std", 0.02))
    if spec.get("init") == "he":
        with torch.no_grad():  # He (Kaiming normal) std sqrt(2 / fan_in) per layer
            for weight in module.weights:
                weight.normal_(0, (2 / weight.shape[1]) ** 0.5, generator=torch.Generator().manual_seed(0))
    shift, scale = spec.get("standardization", (None, None))
    if spec.get("optimizer") == "sgd":
        optimizer = torch.optim.SGD(module.parameters(), lr=spec["lr"], momentum=0.9)
    else:
        optimizer = torch.optim.Adam(module.parameters(), lr=spec["lr"], fused=True)
    rows = spec.get("rows")  # a subset of the training pixels, or all
    n = len(labels) if rows is None else len(rows)
    steps = spec.get("steps") or args.epochs * -(-n // 64)
    checkpoints = sorted({s for s in [0, 50, 100, 200, 500, 1000, 2000, 3000, 5000] if s <= steps}
                         | set(range(0, steps + 1, args.every)) | {steps})
    rngs = [np.random.default_rng(1000 + m) for m in range(members)]
    order, position = None, n
    curve, losses = [], []
    began_wall, began_cpu = time.perf_counter(), time.process_time()

    def prepared(batch):
        return batch if shift is None else (batch - shift) / scale

    probe_x = prepared(x[probe])
    for step in range(steps + 1):
        if step in checkpoints:
            dead = _dead_units(module, probe_x)
            module.train()
            curve.append({"step": step, "epoch": step / -(-n // 64),
                          "dead_layer1_relu_zero_on_probe": dead[0]["relu_zero_on_all_pixels"],
                          "dead_layer2_relu_zero_on_probe": dead[1]["relu_zero_on_all_pixels"],
                          "layer1_running_var_below_1e-12": dead[0]["running_var_below_1e-12"],
                          "layer2_running_var_below_1e-12": dead[1]["running_var_below_1e-12"],
                          "mean_loss_last_100": float(np.mean(losses[-100:])) if losses else None})
        if step == steps:
            break
        if position >= n:
            order = np.stack([rng.permutation(n) for rng in rngs])  # every member its own order
            position = 0
        picked = order[:, position:position + 64].T  # (B, M)
        position += 64
        if rows is not None:
            picked = rows[picked]
        batch = prepared(x[torch.from_numpy(picked.reshape(-1))]).reshape(picked.shape[0], members, -1)
        target = labels[torch.from_numpy(picked.reshape(-1))]
        logits = module(batch)
        loss = F.cross_entropy(logits.reshape(-1, 59), target, reduction="none").reshape(picked.shape).mean(0).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()) / members)
    full_dead = _dead_units(module, prepared(x) if rows is None else prepared(x[torch.from_numpy(rows)]))
    return {
        "settings": {k: v for k, v in spec.items() if k not in ("rows", "standardization")},
        "training_pixels": n, "steps": steps, "members": members,
        "seconds_wall": time.perf_counter() - began_wall, "seconds_cpu": time.process_time() - began_cpu,
        "load_average_after": machine()["load_average_1min"],
        "curve": curve, "dead_units_at_end_over_its_training_pixels": full_dead,
    }


def _input_diagnostics(x, standardization):
    """Why Adam's first steps can kill first-layer units: the common part of the input against its spread.

    Adam moves every weight by about ``lr`` per step whatever its gradient's size, so one step can
    shift a unit's pre-activation ``w . x`` by up to ``lr * sum_d |x_d|`` on every pixel at once when the
    features share a large mean; the pixels differ from each other only by ``x - mean``.
    """
    import torch

    from sklearn_ddpm.ensemble._module import BatchedMLPEnsemble

    out = {}
    for name, rows in (("raw", x), ("standardized", (x - standardization[0]) / standardization[1])):
        mean = rows.mean(0)
        module = BatchedMLPEnsemble(1, rows.shape[1], 59, (256, 128), seeds=[0])
        with torch.no_grad():
            pre = rows @ module.weights[0][0]
        out[name] = {"mean_l1_norm_per_pixel": float(rows.abs().sum(1).mean()),
                     "l1_norm_of_the_mean_feature": float(mean.abs().sum()),
                     "mean_l1_norm_of_the_centred_pixel": float((rows - mean).abs().sum(1).mean()),
                     "init_preactivation_std_over_pixels_mean_over_units": float(pre.std(0).mean()),
                     "init_preactivation_abs_mean_over_pixels_mean_over_units": float(pre.mean(0).abs().mean())}
    return out


def phase_dynamics(args, data, payload):
    import torch

    from sklearn_ddpm import DDPMFeatureTransformer
    from sklearn_ddpm.ensemble._classifier import _standardization
    from sklearn_ddpm.ensemble._pixels import select_training_pixels

    dyn = payload.setdefault("dynamics", {"probe_pixels": args.probe, "variants": {}})
    images, masks = data.images[:2], data.masks[:2]
    features = DDPMFeatureTransformer(random_state=args.seed).fit_transform(images)
    image_index, ys, xs, labels, _ = select_training_pixels(masks, 255, "auto")
    x = _dense(features, image_index, ys, xs)
    labels = torch.as_tensor(labels, dtype=torch.long)
    rng = np.random.default_rng(0)
    probe = torch.from_numpy(np.sort(rng.choice(len(labels), min(args.probe, len(labels)), replace=False)))
    capped = select_training_pixels(masks, 255, "auto", None, 500, np.random.default_rng(0))
    # rows of x for the 500-per-class sample (x holds every labelled pixel in the same raster order)
    key_all = {(int(a), int(b), int(c)): r for r, (a, b, c) in enumerate(zip(image_index, ys, xs))}
    capped_rows = np.array([key_all[(int(a), int(b), int(c))] for a, b, c in zip(*capped[:3])])
    mean, std = _standardization(features, image_index, ys, xs, np.random.default_rng(0))
    standardization = (torch.as_tensor(mean), torch.as_tensor(std))
    dyn["training_pixels_all"] = int(len(labels))
    dyn["training_pixels_500_per_class"] = int(len(capped_rows))
    dyn["steps_per_epoch_all"] = -(-len(labels) // 64)
    dyn["steps_per_epoch_500_per_class"] = -(-len(capped_rows) // 64)
    dyn["feature_std_range"] = [float(std.min()), float(std.max())]
    dyn["input_diagnostics"] = _input_diagnostics(x[probe], standardization)
    variants = {
        "reference": {"lr": 1e-3},
        "lr_1e-4": {"lr": 1e-4},
        "standardized": {"lr": 1e-3, "standardization": standardization, "standardize": True},
        "init_std_0.002": {"lr": 1e-3, "init_std": 0.002},
        "init_he": {"lr": 1e-3, "init": "he"},
        "sgd_momentum_lr_0.01": {"lr": 1e-2, "optimizer": "sgd"},
        "500_per_class_same_steps": {"lr": 1e-3, "rows": capped_rows,
                                     "steps": args.epochs * -(-len(labels) // 64)},
    }
    began = time.monotonic()
    for name in args.variants or variants:
        if name in dyn["variants"]:
            continue
        if args.max_minutes is not None and time.monotonic() - began > 60 * args.max_minutes:
            print(f"--max-minutes reached before {name}; rerun to resume")
            break
        dyn["variants"][name] = _train_variant(name, variants[name], x, labels, probe, args)
        last = dyn["variants"][name]["curve"][-1]
        print(name, "steps", last["step"], "dead L1", last["dead_layer1_relu_zero_on_probe"],
              "L2", last["dead_layer2_relu_zero_on_probe"], flush=True)
        write_json("nan_dead_units", payload, args.out)


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--phase", choices=["fit", "dynamics", "all"], default="all")
    p.add_argument("--members", type=int, default=5, help="ensemble members of the fit phase (default fit: 10)")
    p.add_argument("--held-out", type=int, default=3, help="labeled_pool photos after the two trained on")
    p.add_argument("--dyn-members", type=int, default=3, help="members per dynamics variant")
    p.add_argument("--epochs", type=int, default=4, help="passes over all pixels per dynamics variant")
    p.add_argument("--every", type=int, default=2000, help="dead-unit check every this many steps")
    p.add_argument("--probe", type=int, default=20000, help="training pixels on which dead units are checked")
    p.add_argument("--variants", nargs="*", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-fit", default=None, help="also pickle the fitted pipeline here (for later analysis)")
    p.add_argument("--max-minutes", type=float, default=None, help="start no variant after this; rerun to resume")
    args = p.parse_args(argv)
    # a smoke run never merges into the measured record
    args.out = args.out or RESULTS_DIR / ("nan_dead_units_quick.json" if args.quick else "nan_dead_units.json")
    payload = {"model": str(BUNDLED_MODEL), "protocol": __doc__,
               "backbone_note": "the bundled 64x64 horse DDPM: there is no CCP backbone in this workspace"}
    if args.out.exists():
        payload = {**json.loads(args.out.read_text()), **payload}
        payload.pop("machine", None)  # write_json records this run's machine and date
        payload.pop("date", None)
    if args.quick:
        args.members, args.held_out, args.dyn_members, args.epochs, args.every = 2, 1, 1, 1, 100
        args.variants = args.variants or ["reference", "standardized"]
    with torch_threads(args.threads):
        data = _load(2)
        if args.quick:
            data.images, data.masks = [im[200:296, 140:204] for im in data.images], [m[200:296, 140:204] for m in data.masks]
        if args.phase in ("fit", "all"):
            phase_fit(args, data, payload)
            write_json("nan_dead_units", payload, args.out)
        if args.phase in ("dynamics", "all"):
            phase_dynamics(args, data, payload)
    path = write_json("nan_dead_units", payload, args.out)
    print(f"wrote {path}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
