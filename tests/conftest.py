"""Shared test fixtures (their parts are in tests/synthetic.py) and the RRPS data in ../shared (skipped if absent).

The project root and example/ are on the import path through pyproject.toml's pytest settings."""
import pytest

from tests.synthetic import ROOT, face_points, make_project, picture, sphere_mesh, write_style_example
from utils.io.files import save_json
from utils.io.images import save_image
from utils.io.landmarks import save_landmarks
from utils.io.mesh import save_obj

SHARED_RRPS = ROOT.parent / "shared" / "data" / "rrps"


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs headless Chromium (tests/browser.py); skipped without it")


@pytest.fixture
def rrps_data():
    """Path to ../shared/data/rrps; the test is skipped with a reason when it is not there."""
    if not SHARED_RRPS.is_dir():
        pytest.skip(f"RRPS data not found at {SHARED_RRPS} (expected ../shared beside the checkout)")
    return SHARED_RRPS


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A tiny project folder after rendering and correspondences: models/, content/, style/ (one good style);
    run.py's feature network is the tiny one (``tests.synthetic.make_project``)."""
    return make_project(tmp_path, monkeypatch)


@pytest.fixture
def example(tmp_path):
    """tmp/content/face (2 views, 64 px, a vertex grid) and tmp/style/toon (with landmarks)."""
    return write_style_example(tmp_path)


@pytest.fixture
def fake_run(tmp_path):
    """example/ and output/ of a tiny run: pair head x ink complete, head x "oil paint" interrupted after one view,
    head x wax failed before writing anything (known only from the batch's failures)."""
    content, style, output = tmp_path / "example/content/head", tmp_path / "example/style", tmp_path / "output"
    for k in range(2):
        save_image(content / f"view_{k}.png", picture(k))
        save_landmarks(content / f"landmarks_{k}.txt", face_points(48))
    for seed, name in enumerate(["ink", "oil paint", "wax"]):
        save_image(style / f"{name}.png", picture(10 + seed))
    save_landmarks(style / "ink.txt", face_points(48))
    done = output / "head/ink"
    mesh = sphere_mesh(1)
    save_obj(done / "mesh.obj", mesh)
    save_obj(done / "mesh_smooth.obj", mesh.with_verts(mesh.verts * 0.9))
    for k in range(2):
        save_image(done / f"stylized_{k}.png", picture(20 + k))
        save_image(done / f"unwarped_{k}.png", picture(30 + k))
    save_image(done / "intermediate/loss_curves.png", picture(40))
    save_image(done / "intermediate/keypoints_view1.png", picture(41))
    save_json(done / "metrics.json", {"psnr_db": [30.0, 32.0], "flipped_face_share": 0.0125,
                                      "displacement_rel_bbox": {"mean": 0.01, "max": 0.05},
                                      "image_metrics_region": "footprint <eroded>"})
    save_json(done / "params.json", {"style": "ink", "settings": {"iterations": 3}})
    save_json(done / "complete.json", {"seconds": 1.5})
    save_image(output / "head/oil paint/stylized_0.png", picture(50))
    failures = {("head", "wax"): "InputError: wax.txt missing"}
    return tmp_path, failures
