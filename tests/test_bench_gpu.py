"""bench/bench_gpu.py (`python -m bench.bench_gpu`) runs end to end on the CPU (tiny sizes), so that it is known
to work before a GPU sees it."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_gpu_runs_on_the_cpu():
    command = [sys.executable, "-m", "bench.bench_gpu", "--device", "cpu", "--size", "64", "--image-size", "64",
               "--iterations", "1", "--timing-iterations", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    for expected in ("rendering  auto (fast)", "rendering  pytorch3d", "s/iteration", "image-space step",
                     "reconstruction"):
        assert expected in done.stdout
    assert len([line for line in done.stdout.splitlines() if line.strip().startswith(("16 ", "32 ", "64 "))]) == 3
