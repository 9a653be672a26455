"""Wall time of every pipeline step, run as a user runs them, on the example and on one real RRPS mesh.

    .venv/bin/python -m bench.bench_pipeline                 # example (hopper x astronaut_caricature) and 00319 x 1
    .venv/bin/python -m bench.bench_pipeline --skip-rrps     # the example only

Each case works in a fresh temporary folder (the project's example/ and output/ are not touched; ../shared is
read in place). Prints seconds per step and in all; asserts nothing.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RRPS = ROOT.parent / "shared" / "data" / "rrps"


def steps(work, style):
    """The commands of the pipeline on a work folder (models/, style/ inside it), one style."""
    content, styles, output = work / "content", work / "style", work / "output"
    return [
        ("rendering", ["rendering.py", *map(str, sorted((work / "models").glob("*.obj"))), "--out", str(content)]),
        ("correspondences", ["correspondences.py", "--content", str(content), "--style", str(styles),
                             "--models", str(work / "models")]),
        ("run (stylize + reconstruct)", ["run.py", "--content-dir", str(content), "--style-dir", str(styles),
                                         "--output", str(output), "--style", style, "--no-report"]),
        ("smooth", ["smooth.py", "--output", str(output)]),
        ("report", ["report.py", "--output", str(output), "--content-dir", str(content), "--style-dir", str(styles)]),
    ]


def run_case(name, work, style):
    """Run every step in ``work``; print and return {step: seconds}."""
    print(f"\n== {name} (work folder {work})", flush=True)
    times = {}
    for step, command in steps(work, style):
        start = time.time()
        result = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        times[step] = time.time() - start
        status = "ok" if result.returncode == 0 else f"exit {result.returncode}: {result.stderr.strip()[-300:]}"
        print(f"{step:30s} {times[step]:8.1f} s   {status}", flush=True)
    print(f"{'total':30s} {sum(times.values()):8.1f} s")
    return times


def example_case(root):
    """A copy of the project's example meshes and one style."""
    work = root / "example"
    shutil.copytree(ROOT / "example" / "models", work / "models")
    shutil.copytree(ROOT / "example" / "style", work / "style", ignore=shutil.ignore_patterns("overlays"))
    return work


def rrps_case(root, mesh_id, style_id):
    """One RRPS mesh (linked, not copied) and one Face-of-Art style with its landmarks."""
    work = root / "rrps"
    (work / "models").mkdir(parents=True)
    (work / "models" / f"{mesh_id}.obj").symlink_to(RRPS / "meshes" / f"{mesh_id}.obj")
    (work / "style").mkdir()
    for suffix in (".png", ".txt"):
        shutil.copy(RRPS / "style" / f"{style_id}{suffix}", work / "style" / f"{style_id}{suffix}")
    return work


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", default="astronaut_caricature", help="example style")
    parser.add_argument("--mesh", default="00319", help="RRPS mesh id")
    parser.add_argument("--rrps-style", default="1", help="RRPS style id")
    parser.add_argument("--skip-rrps", action="store_true")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="rrps-bench-") as tmp:
        run_case("example", example_case(Path(tmp)), args.style)
        if args.skip_rrps:
            return
        if not RRPS.is_dir():
            print(f"\nRRPS data not found at {RRPS}: real-mesh case skipped")
            return
        run_case(f"RRPS mesh {args.mesh} x style {args.rrps_style}", rrps_case(Path(tmp), args.mesh, args.rrps_style),
                 args.rrps_style)


if __name__ == "__main__":
    main()
