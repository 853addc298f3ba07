"""Segments of the documented train-ddpm command (resume), one exported snapshot per segment, with
each segment's wall and CPU (user+sys) seconds and load average in segments.json."""
import json, os, resource, shutil, subprocess, sys, time
from pathlib import Path
os.chdir("/work/main")
DATA = "../shared/data/ccp_clothing"; RUN = Path(".cache/ccp_ddpm"); SNAP = Path("/tmp/ccp-protocol/snapshots")
LOG = Path("/tmp/ccp-protocol/segments.json")
END = float(sys.argv[1])  # epoch seconds: no segment runs past this
first_pid = int(sys.argv[2]) if len(sys.argv) > 2 else None
segments = json.loads(LOG.read_text()) if LOG.exists() else []
tick = os.sysconf("SC_CLK_TCK")

def snapshot():
    info = json.loads((RUN / "train_info.json").read_text())
    dest = SNAP / f"step-{info['step']}"
    shutil.rmtree(dest, ignore_errors=True); dest.mkdir(parents=True)
    for name in ("model_index.json", "unet", "scheduler", "train_info.json", "train_log.csv"):
        src = RUN / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return info

def record(target, wall, cpu, note):
    info = snapshot()
    segments.append({"target_steps": target, "step": info["step"], "train_seconds": info["train_seconds"],
                     "segment_wall_s": round(wall, 1), "segment_cpu_s": round(cpu, 1), "cpu_note": note,
                     "loadavg_end": os.getloadavg(), "utc_end": time.strftime("%H:%M:%S", time.gmtime())})
    LOG.write_text(json.dumps(segments, indent=1))
    print(segments[-1], flush=True)
    return info["step"]

if first_pid:  # the segment started by the shell loop: poll its CPU time until it exits
    t0, cpu = time.time(), 0.0
    while Path(f"/proc/{first_pid}").exists():
        try:
            f = Path(f"/proc/{first_pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(f[11]) + int(f[12])) / tick
        except Exception:
            pass
        time.sleep(2)
    record(250, time.time() - t0, cpu, "polled /proc/PID/stat every 2 s (last reading before exit)")

for target in (500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 7000, 8000, 10000):
    left = int((END - time.time()) / 60)
    if left < 2:
        print("time up", flush=True); break
    before = resource.getrusage(resource.RUSAGE_CHILDREN); t0 = time.time()
    subprocess.run(["nice", "-n", "10", ".venv/bin/sklearn-ddpm", "train-ddpm", f"{DATA}/images", str(RUN),
                    "--image-list", ".cache/ccp_ddpm_images.txt", "--preset", "64", "--max-steps", str(target),
                    "--max-minutes", str(left), "--threads", "1", "--checkpoint-every", "250", "--quiet"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    step = record(target, time.time() - t0, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
                  "getrusage(RUSAGE_CHILDREN) around the segment")
    if step < target:
        print("budget spent", flush=True); break
print("DONE", flush=True)
