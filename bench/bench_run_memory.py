"""Peak memory of run.py against mesh size: the figures behind utils.device.run_memory_estimate.

    python -m bench.bench_run_memory 150 256     # a 150 x 150 grid relief, stylized at 256 px

Builds the pipeline tests' tiny project (tests/synthetic.py, ``make_project``) with a GRID x GRID relief, then runs
run.py on it (its tiny feature network, 1 iteration per scale, 5 refinement steps) and prints the process's peak
resident memory before and after. Run one size per process: the peak is per process. Measured (2 cores, CPU):
150 -> 1431 MB, 300 -> 2783 MB.
"""
import resource
import sys
import tempfile
from pathlib import Path

import pytest

from tests.synthetic import make_project, run_main


def main():
    grid, size = int(sys.argv[1]), sys.argv[2]
    root = Path(tempfile.mkdtemp(prefix=f"memory{grid}-"))
    make_project(root, pytest.MonkeyPatch(), grid)  # render, landmarks, style
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    code = run_main(root, root / "out", "--image-size", size, "--iterations", "1", "--refine-iterations", "5",
                    "--no-report")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"grid {grid}: {grid * grid} vertices, {2 * (grid - 1) ** 2} faces, exit {code}, "
          f"peak memory {before} MB before run.py, {after} MB after")


if __name__ == "__main__":
    main()
