"""``benchmarks/gpu_check.sh --dry-run`` runs every stage of the GPU check on the CPU at tiny sizes."""

import json
import os
import subprocess
import sys

from .conftest import BENCHMARKS


def test_gpu_check_dry_run_runs_every_stage(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), "--dry-run"], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert record["dry_run"] is True
    stages = record["stages"]
    assert list(stages) == ["tests", "extract", "ensemble", "bf16", "memory", "weizmann"]
    assert all(stage["status"] == "ok" for stage in stages.values()), stages
    # every stage left its record in $OUT, and the log holds the closing table
    for name in ("extract", "ensemble", "memory", "bf16_agreement", "weizmann_cuda_to_cpu"):
        assert json.loads((tmp_path / f"{name}.json").read_text())["machine"]["cpu_cores"] >= 1
    assert "CUDA test" not in stages["tests"]["status"] and "collected" in stages["tests"]["result"]
    weizmann = json.loads((tmp_path / "weizmann_cuda_to_cpu.json").read_text())
    assert weizmann["cpu_process"]["cuda_available"] is False
    assert 0 <= weizmann["miou_loaded_on_cpu"] <= 100
    # bf16 against fp32 features: the bounds tests/features/test_autocast.py holds the CPU to, per layer
    # (the per-pixel minimum is recorded too, but a single pixel's channel vector can be near zero)
    assert stages["bf16"]["layer cosine min"] > 0.998, stages["bf16"]
    assert stages["bf16"]["layer relative L2 max"] < 0.05, stages["bf16"]
    assert stages["bf16"]["cosine min"] <= 1.0 + 1e-6
    assert "gpu_check (dry run, CPU" in (tmp_path / "gpu_check.log").read_text()
    assert len(list(tmp_path.iterdir())) <= 8  # the device tool brings back at most 8 files
