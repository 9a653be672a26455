"""End to end on a tiny mesh: rendering.py -> correspondences.py -> run.py -> smooth.py, as a batch that resumes."""
import json
import sys

import numpy as np
import pytest
import torch

import run
import smooth
from tests.synthetic import COMPARED, run_main
from utils.batch import is_complete
from utils.io.images import save_image
from utils.io.landmarks import load_landmarks
from utils.io.mesh import load_mesh


def test_landmarks_come_from_the_mesh_vertices(project):
    verts2d = np.load(project / "content" / "face" / "verts2d.npy")
    indices = np.loadtxt(project / "models" / "face.landmarks.txt", dtype=int)
    for k in range(2):
        landmarks = load_landmarks(project / "content" / "face" / f"landmarks_{k}.txt")
        assert np.allclose(landmarks, verts2d[indices, k], atol=1e-3)


@pytest.mark.slow
def test_broken_style_is_reported_and_the_others_finish(project, capsys, monkeypatch):
    save_image(project / "style" / "broken.png", np.full((40, 40, 3), 0.5))
    (project / "style" / "broken.txt").write_text("10 10\n" * 67)
    code = run_main(project, project / "output")
    assert code == 1
    output = capsys.readouterr().out
    assert "broken.txt" in output and "failed 1" in output
    done = project / "output" / "face" / "toon"
    assert is_complete(done) and (done / "mesh.obj").is_file() and (done / "metrics.json").is_file()
    assert not is_complete(project / "output" / "face" / "broken")
    report = (project / "output" / "index.html").read_text()
    assert "broken" in report and "toon" in report
    all_round = json.loads((done / "metrics.json").read_text())["all_round"]  # step 4c ran and left its pictures
    assert all_round["azimuths"] and (done / "intermediate" / "all_round_views.png").is_file()

    # the input's vertices first, in order, then the midpoints of the edges step 4c split (max_edge_px)
    reconstructed, original = load_mesh(done / "mesh.obj"), load_mesh(project / "models" / "face.obj")
    assert len(reconstructed.verts) > len(original.verts) and len(reconstructed.faces) > len(original.faces)
    assert float((reconstructed.verts[:len(original.verts)] - original.verts).norm(dim=1).median()) < 0.1
    monkeypatch.setattr(sys, "argv", ["smooth.py", str(done / "mesh.obj")])
    smooth.main()
    assert torch.equal(load_mesh(done / "mesh_smooth.obj").faces, reconstructed.faces)


def test_missing_mesh_is_reported_before_any_work(project, monkeypatch, capsys):
    (project / "models" / "face.obj").unlink()
    monkeypatch.setattr(run, "stylize_views", lambda *args, **kwargs: pytest.fail("optimisation started"))
    assert run_main(project, project / "output") == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error:") and "face.obj" in error and "--no-reconstruct" in error


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_outputs(project, monkeypatch):
    assert run_main(project, project / "straight", "--no-report") == 0

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the pair, after its images were written

    with monkeypatch.context() as patch:
        patch.setattr(run, "reconstruct_mesh", interrupt)
        assert run_main(project, project / "resumed", "--no-report") == 130
    halfway = project / "resumed" / "face" / "toon"
    assert (halfway / "stylized_0.png").is_file() and not is_complete(halfway) and not (halfway / "mesh.obj").exists()
    assert not list(halfway.rglob("*.tmp-*"))

    assert run_main(project, project / "resumed", "--no-report") == 0
    assert is_complete(halfway)
    for name in COMPARED:
        assert (halfway / name).read_bytes() == (project / "straight" / "face" / "toon" / name).read_bytes(), name
    first = (halfway / "complete.json").stat().st_mtime
    assert run_main(project, project / "resumed", "--no-report") == 0  # complete: skipped
    assert (halfway / "complete.json").stat().st_mtime == first


def test_a_full_disk_names_the_files_and_the_summary_is_printed(project, monkeypatch, capsys):
    import errno
    import os

    def full_disk(*args, **kwargs):  # what a write through an open file gives on a full disk: no file name
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full_disk)  # every .npy output
    monkeypatch.setattr(os, "sendfile", full_disk)  # shutil's copy of the report's viewer files
    output = project / "output"
    status = run_main(project, output, "--no-reconstruct")
    out, err = capsys.readouterr()
    failed = [line for line in (out + err).splitlines() if "failed:" in line]
    assert status != 0 and len(failed) == 1 and str(output / "face" / "toon") in failed[0], out + err
    assert ".npy" in failed[0] and "_npyio_impl" not in failed[0]
    assert "done 0, skipped 0 (already complete), failed 1" in out
    said = err.strip().splitlines()[-1]
    assert said.startswith(f"error: {output / 'report_files'}") and "No space left" in said, err
    assert "utils/report/vendor" not in out + err
