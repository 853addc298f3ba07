"""The backbone-snapshot benchmark scores a checkpoint with its own CPU time, and a rerun skips it."""

import numpy as np


def test_weizmann_backbones_quick(tmp_path, load):
    from sklearn_ddpm.ddpm_training import train_ddpm

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(4)]
    run = train_ddpm(images, tmp_path / "run", preset="tiny", image_size=16, batch_size=2,
                     max_steps=2, checkpoint_every=2, progress=False, num_threads=1)
    checkpoint = str(next((run / "checkpoints").glob("*.pt")))
    bench = load("weizmann_backbones")
    args = ["--quick", "--threads", "1", "--cv", "2", "--backbones", checkpoint, "--out", str(tmp_path / "w.json")]
    row = bench.main(args)["backbones"][checkpoint]
    assert row["step"] == 2 and row["cpu_hours"] > 0
    assert len(row["cv_fold_miou"]) == 2 and 0 <= row["cv_miou"] <= 100
    assert 0 <= row["test_miou"] <= 100 and row["test_miou_std"] is None  # one seed in --quick
    # The record keeps what it scored: a rerun does not extract again.
    assert bench.main(args)["backbones"][checkpoint]["extract_seconds"] == row["extract_seconds"]
