"""The committed example data (example/models, example/style) and the code that makes it."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from models.landmark_detector import detect_landmarks
from utils.rendering.cameras import frame_mesh, make_cameras
from utils.errors import InputError
from example_data import (exaggerate_landmarks, make_style, require_landmarks, sample_photo, square_face_crop,
                          thin_plate_warp)
from utils.io.images import list_images, read_image_array
from utils.io.mesh import load_mesh, to_pytorch3d
from utils.rendering.render import render_views
from utils.style.warp import border_points

EXAMPLE = Path(__file__).resolve().parents[1] / "example"
MESH_PATH = EXAMPLE / "models" / "hopper.obj"
LANDMARKS_PATH = EXAMPLE / "models" / "hopper.landmarks.txt"


@pytest.fixture(scope="module")
def example_mesh():
    return load_mesh(MESH_PATH)


@pytest.fixture(scope="module")
def landmark_vertices():
    return np.loadtxt(LANDMARKS_PATH, dtype=np.int64)


def load_script():
    """example/make_example.py as a module (its parameters and main)."""
    spec = importlib.util.spec_from_file_location("make_example", EXAMPLE / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mesh_size_colours_and_frame(example_mesh, landmark_vertices):
    verts = example_mesh.verts
    assert 10_000 <= len(verts) <= 45_000 and MESH_PATH.stat().st_size < 5e6
    assert example_mesh.colors is not None and float(example_mesh.colors.std()) > 0.05
    extent = verts.max(0).values - verts.min(0).values
    assert 1.9 < float(extent[1]) < 2.1  # about 2 units tall, y up
    jaw = verts[torch.from_numpy(landmark_vertices[[0, 16]])]
    assert float(extent[2]) > 0.9 * float(torch.linalg.norm(jaw[1] - jaw[0]))  # deeper than the face: not a mask
    centre = (verts.max(0).values + verts.min(0).values) / 2
    assert float(centre[:2].abs().max()) < 0.1
    corners = verts[example_mesh.faces]  # (F, 3, 3)
    normals = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    front = corners[:, :, 2].mean(1) > float(verts[:, 2].median())
    assert float((normals[front, 2] > 0).float().mean()) > 0.9  # a closed head: front faces wound toward +z,
    assert float((normals[~front, 2] < 0).float().mean()) > 0.9  # back faces away from it


def test_landmark_vertices_lie_on_the_face_toward_plus_z(example_mesh, landmark_vertices):
    assert landmark_vertices.shape == (68,)
    assert landmark_vertices.min() >= 0 and landmark_vertices.max() < len(example_mesh.verts)
    assert len(np.unique(landmark_vertices)) >= 64
    points = example_mesh.verts[torch.from_numpy(landmark_vertices)]
    nose_tip, jaw_ends, chin, brows = points[30], points[[0, 16]], points[8], points[17:27]
    assert float(nose_tip[2]) > float(jaw_ends[:, 2].max()) + 0.1  # the nose points to +z
    assert float(nose_tip[2]) > float(torch.quantile(example_mesh.verts[:, 2], 0.99))
    assert float(points[36, 0]) < float(points[45, 0])  # subject's right eye on the image left: not mirrored
    assert float(brows[:, 1].min()) > float(chin[1])  # y up


def test_style_images_have_68_landmarks_inside():
    images = list_images(EXAMPLE / "style")
    assert len(images) >= 2
    for path in images:
        image = read_image_array(path)
        height, width = image.shape[:2]
        assert height == width and 256 <= height <= 512, path
        points = np.loadtxt(path.with_suffix(".txt"))
        assert points.shape == (68, 2), path
        assert (points >= 0).all() and (points[:, 0] <= width - 1).all() and (points[:, 1] <= height - 1).all()
        jaw_width = np.ptp(points[:17, 0])
        assert jaw_width > 0.35 * width, f"{path}: the face should fill most of the image"


@pytest.mark.slow
def test_dlib_finds_a_face_on_views_of_the_mesh(example_mesh):
    """The content views rendering.py makes by default: azimuth -10 and +10, 512 px, framed on the box."""
    at, distance = frame_mesh(example_mesh.verts, 15.0)
    cameras = make_cameras([-10.0, 10.0], [0.0, 0.0], distance, 15.0, at)
    with torch.no_grad():
        images, _ = render_views(to_pytorch3d(example_mesh), cameras, 512)
    for image in images:
        landmarks = detect_landmarks(image)  # the pipeline's detector, as correspondences.py runs it
        assert landmarks.shape == (68, 2)
        assert np.ptp(landmarks[:, 0]) > 150  # the face fills a good part of the view


@pytest.mark.slow
def test_committed_mesh_is_what_the_script_makes(example_mesh, landmark_vertices):
    pytest.importorskip("mediapipe", reason="the example mesh is made with mediapipe (bash scripts/setup_env.sh)")
    from utils.acquisition.pipeline import acquire_head

    head = acquire_head(sample_photo("hopper"), "hopper", load_script().example_settings())
    mesh, indices = head.mesh, head.landmark_vertices
    assert torch.equal(mesh.faces, example_mesh.faces)
    assert torch.allclose(mesh.verts, example_mesh.verts, atol=1e-5)
    assert torch.allclose(mesh.colors, example_mesh.colors, atol=1e-4)
    assert np.array_equal(indices, landmark_vertices)


def test_committed_styles_are_what_the_script_makes():
    script = load_script()
    astronaut = sample_photo("astronaut")
    landmarks = require_landmarks(astronaut, "astronaut")
    for name, (filter_name, exaggeration) in script.STYLES.items():
        image, points = make_style(astronaut, landmarks, filter_name, exaggeration, script.STYLE_SIZE)
        committed = read_image_array(EXAMPLE / "style" / f"{name}.png") * 255
        assert np.abs(committed - image).mean() < 1.0, name
        assert np.allclose(np.loadtxt(EXAMPLE / "style" / f"{name}.txt"), points, atol=0.01), name


def test_no_face_is_an_input_error():
    with pytest.raises(InputError, match="no face"):
        require_landmarks(np.full((120, 120, 3), 128, dtype=np.uint8), "grey.png")


def test_exaggeration_identity_and_direction():
    face = np.loadtxt(EXAMPLE / "style" / "astronaut_cartoon.txt")
    assert np.allclose(exaggerate_landmarks(face), face)
    caricature = exaggerate_landmarks(face, eyes=1.5, chin=0.3, face_width=0.8)
    eye_width = lambda points: np.ptp(points[36:42, 0])  # noqa: E731
    assert eye_width(caricature) > 1.4 * eye_width(face)
    assert caricature[8, 1] > face[8, 1] + 5  # longer chin (y down)
    assert np.ptp(caricature[:17, 0]) < np.ptp(face[:17, 0])  # narrower jaw


def test_thin_plate_warp_moves_a_dot_to_its_target():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[30:33, 20:23] = 255  # a dot centred at (21, 31)
    source, target = np.array([[21.0, 31.0], [40.0, 40.0]]), np.array([[27.0, 25.0], [40.0, 40.0]])
    warped = thin_plate_warp(image, source, target)
    y, x = np.unravel_index(np.argmax(warped[..., 0]), warped.shape[:2])
    assert abs(x - 27) <= 1 and abs(y - 25) <= 1
    assert np.array_equal(thin_plate_warp(image, source, source), image)


def test_face_crop_carries_points_with_the_image():
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    landmarks = np.stack([np.linspace(100, 200, 68), np.linspace(60, 150, 68)], axis=1).round()
    image[int(landmarks[40, 1]), int(landmarks[40, 0])] = 255
    crop, points = square_face_crop(image, landmarks, size=128)
    y, x = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    assert crop.shape == (128, 128, 3)
    assert abs(x - points[40, 0]) <= 1 and abs(y - points[40, 1]) <= 1


def test_border_points_lie_on_the_border():
    points = border_points(100, per_side=5).numpy()
    assert points.shape == (20, 2)
    on_border = (np.isclose(points, 0) | np.isclose(points, 99)).any(1)
    assert on_border.all() and len(np.unique(points, axis=0)) == 20
