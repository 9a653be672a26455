"""Pairs per hour of run.py's batch: the local loop, and Ray with 1 and 2 workers; Ray's own overheads.

    .venv/bin/python -m bench.bench_batch                  # the example mesh x 6 styles at tiny settings (minutes)
    .venv/bin/python -m bench.bench_batch --styles 4 --iterations 20

Works in a temporary folder (the example mesh rendered small, its styles copied under several names). Each Ray
configuration starts a fresh local Ray, so the timed batch includes starting its workers and loading the network
in each. Prints the figures and the machine's load (1-minute average, as `uptime`) after each: on a shared
machine the ratios follow the load and the thread count as much as the executor (run it under OMP_NUM_THREADS=1
as well: at a load of 7 on 2 cores, one pair took 8 s at 1 thread and 31-36 s at 2). Asserts nothing.
"""
import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import correspondences
import rendering
import run
from utils import batch_ray

ROOT = Path(__file__).resolve().parents[1]
RAY_CONFIGS = [("ray, 1 worker (2 CPUs each)", 2), ("ray, 2 workers (1 CPU each)", 1)]  # (name, cpus per task)
NOOP_TASKS = 20


def quietly(script, argv):
    """Run a script's main() with these command-line arguments, its printing (and progress bars) hidden.

    Returns its exit code (0 when it returned normally)."""
    sys.argv = [f"{script.__name__}.py", *argv]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            script.main()
        except SystemExit as stop:
            return stop.code
    return 0


def make_project(work, styles, size):
    """The example mesh rendered at ``size`` px and its first style copied under ``styles`` names."""
    shutil.copytree(ROOT / "example" / "models", work / "models")
    source = sorted((ROOT / "example" / "style").glob("*.png"))[0]
    (work / "style").mkdir()
    for i in range(styles):
        for suffix in (".png", ".txt"):
            shutil.copy(source.with_suffix(suffix), work / "style" / f"style{i}{suffix}")
    assert quietly(rendering, [str(work / "models" / "hopper.obj"), "--out", str(work / "content"),
                               "--size", str(size)]) == 0
    assert quietly(correspondences, ["--content", str(work / "content"), "--style", str(work / "style"),
                                     "--models", str(work / "models")]) == 0


def timed_batch(work, output, flags):
    """Seconds for run.py's batch on the project with ``flags``."""
    start = time.time()
    code = quietly(run, ["--content-dir", str(work / "content"), "--style-dir", str(work / "style"),
                         "--output", str(work / output), "--no-report", *flags])
    assert code == 0, f"run.py exited {code} with {flags}"
    return time.time() - start


def ray_overheads():
    """(seconds to start a local Ray, first no-op task (a worker starting), mean later no-op task round trip)."""
    start = time.time()
    batch_ray.start_local_ray(num_cpus=2)
    started = time.time() - start
    noop = batch_ray.ray.remote(lambda: None)
    start = time.time()
    batch_ray.ray.get(noop.remote())
    first = time.time() - start
    start = time.time()
    for _ in range(NOOP_TASKS):
        batch_ray.ray.get(noop.remote())
    return started, first, (time.time() - start) / NOOP_TASKS


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--styles", type=int, default=6, help="pairs (one mesh x this many styles)")
    parser.add_argument("--size", type=int, default=64, help="content views' size, px")
    parser.add_argument("--iterations", type=int, default=10, help="per scale")
    args = parser.parse_args()
    flags = ["--image-size", str(args.size), "--scales", "2", "--iterations", str(args.iterations),
             "--checkpoint-every", "0", "--refine-iterations", "5", "--device", "cpu"]
    print(f"cores: {os.cpu_count()}; load before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="rrps-bench-batch-") as tmp:
        work = Path(tmp)
        make_project(work, args.styles, args.size)
        local = timed_batch(work, "local", flags)
        print(f"{'local loop':32s} {local:7.1f} s  {3600 * args.styles / local:7.0f} pairs/h  1.00   "
              f"(load after {os.getloadavg()[0]:.1f})", flush=True)
        for name, cpus in RAY_CONFIGS:
            started, first, per_task = ray_overheads()
            seconds = timed_batch(work, f"ray{cpus}", [*flags, "--executor", "ray", "--cpus-per-task", str(cpus)])
            batch_ray.ray.shutdown()
            print(f"{name:32s} {seconds:7.1f} s  {3600 * args.styles / seconds:7.0f} pairs/h  "
                  f"{local / seconds:.2f}   (ray start-up {started:.1f} s, first no-op task {first:.2f} s, "
                  f"later no-op task {per_task * 1000:.1f} ms, batch minus local per pair "
                  f"{(seconds - local) / args.styles:+.1f} s; load after {os.getloadavg()[0]:.1f})", flush=True)
        again = timed_batch(work, "local-again", flags)  # the first run also pays this process's first-call costs
        print(f"{'local loop, again at the end':32s} {again:7.1f} s  {3600 * args.styles / again:7.0f} pairs/h  "
              f"{local / again:.2f}   (load after {os.getloadavg()[0]:.1f})", flush=True)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
