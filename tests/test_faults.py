"""Bad input and faults (issue 19): each case gives one clear line, a sensible exit code, and no lost, mixed or
half-written output. Cases about a script's exit code, lines, kills or concurrency run it in a subprocess."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_rendering import sphere_mesh
from utils.io.mesh import save_obj


def script(*args, cwd=ROOT, timeout=120):
    """Run ``python <args>`` from the project root; returns the CompletedProcess (text stdout/stderr)."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def last_line(text):
    """The last non-empty line of a script's output (after any progress bar)."""
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()][-1]


def render(mesh_path, out, *flags):
    """rendering.py on one mesh at 32 px (a subprocess)."""
    return script("rendering.py", mesh_path, "--out", out, "--size", "32", *flags)


# ---- 1. a re-render keeps hand-corrected landmarks when the views did not change -------------------------------

def test_rerender_keeps_corrected_landmarks_when_views_are_identical(tmp_path):
    mesh_path, out = tmp_path / "ball.obj", tmp_path / "content"
    save_obj(mesh_path, sphere_mesh(1))
    assert render(mesh_path, out).returncode == 0
    corrected = out / "ball" / "landmarks_0.txt"
    corrected.write_text("10 10\n" * 68)
    os.utime(mesh_path, (mesh_path.stat().st_atime, mesh_path.stat().st_mtime + 100))  # touched, not changed
    result = render(mesh_path, out)
    assert result.returncode == 0 and corrected.read_text() == "10 10\n" * 68
    assert "moved aside" not in result.stdout + result.stderr

    result = render(mesh_path, out, "--fov", "20")  # the views change: the landmarks go aside, with a line
    assert result.returncode == 0 and not corrected.exists()
    assert (out / "ball" / "landmarks_0.txt.old").read_text() == "10 10\n" * 68
    said = [line for line in result.stdout.splitlines() if "moved aside" in line]
    assert len(said) == 1 and "landmarks_0.txt" in said[0]
