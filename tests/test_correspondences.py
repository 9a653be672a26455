"""correspondences.py on small folders built in tmp_path: detection, mesh landmark vertices, keep, --force."""
import sys
import warnings

import numpy as np
import pytest

import correspondences
from utils.io.images import save_image
from utils.io.landmarks import LANDMARK_COUNT, load_landmarks, project_landmark_vertices, save_landmarks
from utils.landmarks.editor import load_checks


def run_main(monkeypatch, capsys, *args):
    """Run correspondences.main with these arguments; returns (exit status, stdout + stderr)."""
    monkeypatch.setattr(sys, "argv", ["correspondences.py", *map(str, args)])
    try:
        correspondences.main()
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.fixture
def photo_folders(tmp_path):
    """content/photo/view_0.png and style/portrait.png, both matplotlib's Grace Hopper photo (300 x 256)."""
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        photo = np.asarray(Image.open(file).convert("RGB").resize((256, 300), Image.LANCZOS)) / 255.0
    save_image(tmp_path / "content" / "photo" / "view_0.png", photo)
    save_image(tmp_path / "style" / "portrait.png", photo)
    (tmp_path / "models").mkdir()
    return tmp_path


def folder_args(root):
    return ["--content", root / "content", "--style", root / "style", "--models", root / "models"]


@pytest.mark.slow
def test_detects_keeps_and_force_redetects(photo_folders, monkeypatch, capsys):
    root = photo_folders
    content_file, style_file = root / "content/photo/landmarks_0.txt", root / "style/portrait.txt"
    status, output = run_main(monkeypatch, capsys, *folder_args(root))
    assert status == 0 and "2 detected" in output
    detected = load_landmarks(content_file, order="xy", image_size=(300, 256))
    np.testing.assert_allclose(load_landmarks(style_file, order="xy"), detected)
    assert (root / "content/photo/overlays/landmarks_0.png").is_file()
    assert (root / "style/overlays/portrait.png").is_file()

    moved = detected + 5.0
    save_landmarks(content_file, moved)
    status, output = run_main(monkeypatch, capsys, *folder_args(root))
    assert status == 0 and "2 kept" in output
    np.testing.assert_allclose(load_landmarks(content_file, order="xy"), moved, atol=1e-3)

    status, output = run_main(monkeypatch, capsys, *folder_args(root), "--force", "--only", "photo")
    assert status == 0 and "1 detected" in output
    np.testing.assert_allclose(load_landmarks(content_file, order="xy"), detected, atol=1e-3)


def test_landmarks_from_mesh_vertices_equal_verts2d(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    verts2d = rng.uniform(10, 50, size=(200, 2, 2)).astype(np.float32)
    indices = rng.choice(200, LANDMARK_COUNT, replace=False)
    folder = tmp_path / "content" / "mesh"
    for k in range(2):
        save_image(folder / f"view_{k}.png", np.ones((64, 64, 3)))
    np.save(folder / "verts2d.npy", verts2d)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mesh.landmarks.txt").write_text("\n".join(map(str, indices)) + "\n")
    (tmp_path / "style").mkdir()
    status, output = run_main(monkeypatch, capsys, *folder_args(tmp_path))
    assert status == 0 and "2 from mesh vertices" in output
    projected = project_landmark_vertices(verts2d, indices)
    assert projected.shape == (2, LANDMARK_COUNT, 2)
    for k in range(2):
        expected = verts2d[indices, k].astype(np.float64)
        np.testing.assert_allclose(projected[k], expected)
        np.testing.assert_allclose(load_landmarks(folder / f"landmarks_{k}.txt", order="xy"), expected, atol=1e-3)


def test_without_content_says_run_rendering_first(tmp_path, monkeypatch, capsys):
    status, output = run_main(monkeypatch, capsys, *folder_args(tmp_path))
    assert status == 2 and "run rendering.py first" in output and "Traceback" not in output


@pytest.mark.slow
def test_detections_to_check_are_listed_one_line_each(photo_folders, monkeypatch, capsys):
    from models import landmark_detector

    def detect_with_an_unrelated_warning(*args):
        warnings.warn("unrelated library warning", UserWarning)
        return landmark_detector.detect_landmarks(*args)

    monkeypatch.setattr(landmark_detector, "UNCERTAIN_SPREAD", 0.0)  # every detection counts as uncertain
    monkeypatch.setattr(correspondences, "detect_landmarks", detect_with_an_unrelated_warning)
    with pytest.warns(UserWarning, match="unrelated library warning"):  # other warnings are passed on, not counted
        status, output = run_main(monkeypatch, capsys, *folder_args(photo_folders))
    lines = [line for line in output.splitlines() if line.startswith("warning: ")]
    assert status == 0 and "2 detected" in output and "2 to check by eye" in output and "Traceback" not in output
    assert len(lines) == 2 and all("uncertain landmarks" in line for line in lines)
    assert any("portrait.png" in line for line in lines) and "CheckByEyeWarning" not in output
    flagged = load_checks(photo_folders / "style" / "portrait.txt")  # kept for the editor (--edit), flagged first
    assert len(flagged) == 1 and "uncertain landmarks" in flagged[0]


def test_broken_existing_file_and_faceless_image_are_reported(tmp_path, monkeypatch, capsys):
    save_image(tmp_path / "content" / "blank" / "view_0.png", np.ones((64, 64, 3)))
    (tmp_path / "content" / "blank" / "landmarks_0.txt").write_text("1 2\n")
    save_image(tmp_path / "style" / "empty.png", np.full((64, 64, 3), 0.5))
    (tmp_path / "models").mkdir()
    status, output = run_main(monkeypatch, capsys, *folder_args(tmp_path))
    assert status == 2 and "2 failed" in output and "Traceback" not in output
    assert "landmarks_0.txt: found 1 points" in output
    assert str(tmp_path / "style" / "empty.txt") in output
    assert not (tmp_path / "style" / "empty.txt").exists()


def test_two_style_images_with_one_name_are_an_input_error(photo_folders, monkeypatch, capsys):
    save_image(photo_folders / "style" / "portrait.jpg", np.ones((32, 32, 3)))
    status, output = run_main(monkeypatch, capsys, *folder_args(photo_folders))
    assert status == 2 and "portrait" in output and "rename" in output

