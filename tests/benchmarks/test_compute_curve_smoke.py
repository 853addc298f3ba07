"""``benchmarks/compute_curve.py --quick``: points from a tiny training run, a random UNet and a record.

Checks where each point's core-hours come from and that the CV-chosen settings are the ones scored;
never accuracy figures (a smoke run's numbers mean nothing).
"""

import json

import numpy as np
import pytest

from .test_benchmarks_smoke import _run


@pytest.fixture
def curve(load):
    return load("compute_curve")


def test_compute_curve_quick(curve, tmp_path):
    from sklearn_ddpm.ddpm_training import train_ddpm

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 20, 3), dtype=np.uint8) for _ in range(3)]
    run = train_ddpm(images, tmp_path / "run", preset="tiny", image_size=16, batch_size=2, max_steps=2,
                     checkpoint_every=2, progress=False, num_threads=1)
    chosen = {"blocks": [2], "steps": [50], "standardize": True, "n_estimators": 2,
              "max_pixels_per_image": 100, "n_noise_samples": 1}
    protocol = tmp_path / "protocol.json"
    protocol.write_text(json.dumps({"chosen": chosen, "test": None}))
    plot = tmp_path / "curve.png"
    segments = tmp_path / "segments.json"  # the CPU seconds the training driver measured
    segments.write_text(json.dumps([{"step": 2, "segment_cpu_s": 3.6}]))
    weizmann = tmp_path / "weizmann_backbones.json"  # rows as weizmann_backbones.py writes them
    card = {"training time": "1.56 h wall on CPU (x), 1 torch thread, shared", "exported": "2026-11-25 17:30 UTC"}
    scored = {"test_miou_per_seed": [80.0, 81.0, 82.0], "test_miou": 81.0, "test_miou_std": 1.0}
    weizmann.write_text(json.dumps({"classifier": "defaults", "backbones": {
        "bundled": {"source": "bundled", "step": 2000, "cpu_hours": None, "model_card": card, **scored},
        "runs/h64/checkpoints/step-00000500.pt": {"source": "x", "step": 500, "cpu_hours": 0.25,
                                                  "train_seconds": 1800.0, "autocast": ["bfloat16"], **scored}}}))
    args = ["--protocol", str(protocol), "--ccp-snapshots", str(run), "--ccp-random", "--plot", str(plot),
            "--segments", str(segments), "--weizmann-record", str(weizmann)]
    record = _run(curve, tmp_path, *args)
    points = {p["label"]: p for p in record["points"]}
    info = json.loads((run / "train_info.json").read_text())
    step = points[f"step {info['step']}"]
    assert step["core_hours"] == pytest.approx(info["train_seconds"] / 3600)  # one thread
    assert points["random-init UNet"]["core_hours"] == 0
    bundled = points["bundled model exported 2026-11-25 (fp32), 2000 steps"]
    assert bundled["core_hours"] == pytest.approx(1.56) and bundled["dataset"] == "weizmann"
    run64 = points["h64 (bfloat16), step 500"]
    assert run64["cpu_hours"] == 0.25 and run64["core_hours"] == pytest.approx(0.5)
    assert run64["series"] != bundled["series"]  # separate lines: different training runs
    assert bundled["core_hours_backed"] and step["core_hours_backed"]
    # a figure from text is kept, and marked as not backed by a training record
    earlier = points[curve.DEFAULT_RECORDED[0][1]]
    assert earlier["core_hours"] == pytest.approx(3.34) and earlier["core_hours_backed"] is False
    # the x axis: measured CPU hours, and steps x the measured CPU seconds per step for the recorded ones
    assert record["x_axis"] == "cpu_hours" and record["cpu_seconds_per_step"] == pytest.approx(1.8)
    assert step["cpu_hours"] == pytest.approx(3.6 / 3600) and step["cpu_hours_source"] == "measured"
    assert bundled["cpu_hours"] == pytest.approx(2000 * 1.8 / 3600)
    assert record["chosen_settings"] == chosen and plot.stat().st_size > 0
    assert record["settings"] == "protocol"
    # --append keeps the scored points and scores nothing again
    again = _run(curve, tmp_path, *args, "--append")
    assert again["points"] == record["points"]


def test_core_hours_from_model_card(curve, tmp_path):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("| training time | 1.50 h of compute on CPU (x), 2 torch thread(s); torch 2 |\n")
    assert curve.core_hours(card)[0] == pytest.approx(3.0)
    card.write_text("no such line\n")
    with pytest.raises(ValueError, match="training time"):
        curve.core_hours(card)
