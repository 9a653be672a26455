"""The landmark file loader/writer (utils/landmarks.py) and the dlib detector wrapper (models/landmark_detector.py)."""
import warnings

import numpy as np
import pytest

from tests.synthetic import face_points
from utils.errors import InputError
from utils.io.landmarks import LANDMARK_COUNT, LandmarkOrderWarning, landmark_error, load_landmarks, save_landmarks


def write_lines(path, lines):
    """Write the given lines to ``path`` and return it."""
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("line_format, order", [
    ("{x} {y}", "auto"), ("{x}, {y}", "auto"), ("{y}, {x}", "auto"),
    ("{x} {y}", "xy"), ("{y}, {x}", "rowcol"), ("{x}\t{y}", "auto"),
])
def test_load_formats(tmp_path, line_format, order):
    points = face_points()
    path = write_lines(tmp_path / "pts.txt", [line_format.format(x=x, y=y) for x, y in points])
    loaded = load_landmarks(path, order=order, image_size=200)
    assert loaded.dtype == np.float64 and loaded.shape == (LANDMARK_COUNT, 2)
    np.testing.assert_allclose(loaded, points)


def test_explicit_order_overrides_auto(tmp_path):
    points = face_points()
    path = write_lines(tmp_path / "pts.txt", [f"{x} {y}" for x, y in points])
    np.testing.assert_allclose(load_landmarks(path, order="rowcol"), points[:, ::-1])


def test_save_then_load_round_trip(tmp_path):
    points = face_points() + 0.25
    save_landmarks(tmp_path / "out" / "pts.txt", points)
    assert len((tmp_path / "out" / "pts.txt").read_text().splitlines()) == LANDMARK_COUNT
    np.testing.assert_allclose(load_landmarks(tmp_path / "out" / "pts.txt", order="xy"), points, atol=1e-3)
    assert not list((tmp_path / "out").glob("*.tmp-*"))


@pytest.mark.parametrize("size, squash", [(200, 1.0), (64, 1.0), (80, 1.25), (48, 1.0)])
def test_the_tests_synthetic_face_is_read_without_a_doubt(tmp_path, size, squash):
    """The shared fixture is a plausible upright face: the loader reads it back with no order warning."""
    points = face_points(size, squash)
    save_landmarks(tmp_path / "face.txt", points)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LandmarkOrderWarning)
        np.testing.assert_allclose(load_landmarks(tmp_path / "face.txt", image_size=size), points, atol=1e-3)


def test_save_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError):
        save_landmarks(tmp_path / "pts.txt", np.zeros((67, 2)))
    assert not (tmp_path / "pts.txt").exists()


def broken_files():
    """(name, lines, image_size, words expected in the message) for malformed landmark files."""
    lines = [f"{x} {y}" for x, y in face_points()]
    return [
        ("67 points", lines[:67], None, "67 points"),
        ("empty", [], None, "empty"),
        ("nan", lines[:10] + ["nan 3"] + lines[11:], None, "line 11"),
        ("inf", lines[:10] + ["3, inf"] + lines[11:], None, "line 11"),
        ("word", lines[:5] + ["12 abc"] + lines[6:], None, "line 6"),
        ("three numbers", lines[:5] + ["1 2 3"] + lines[6:], None, "line 6"),
        ("outside", lines[:20] + ["100 900"] + lines[21:], 200, "outside"),
        ("image too small", lines, 50, "outside"),
    ]


@pytest.mark.parametrize("name, lines, image_size, expected", broken_files(), ids=lambda v: v if isinstance(v, str) else "")
def test_broken_files_raise_input_error_naming_the_file(tmp_path, name, lines, image_size, expected):
    path = write_lines(tmp_path / f"{name.replace(' ', '_')}.txt", lines)
    with pytest.raises(InputError) as info:
        load_landmarks(path, image_size=image_size)
    message = str(info.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_missing_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_landmarks(tmp_path / "absent.txt")


def test_landmark_error_is_normalised_by_outer_eye_corners():
    points = face_points()
    interocular = np.linalg.norm(points[45] - points[36])
    assert landmark_error(points, points) == 0.0
    assert landmark_error(points + [3.0, 4.0], points) == pytest.approx(5.0 / interocular)


def test_real_files_in_both_orders(rrps_data):
    """The shared data's dlib content points ("x y") and Face-of-Art style points ("row, col") load the same way."""
    content = load_landmarks(rrps_data / "content" / "00319" / "content_pts1.txt", image_size=512)
    style_path = rrps_data / "style" / "10.txt"
    style = load_landmarks(style_path, image_size=256)
    np.testing.assert_allclose(style, load_landmarks(style_path, order="rowcol"))
    raw = np.loadtxt(style_path, delimiter=",")
    np.testing.assert_allclose(style, raw[:, ::-1])
    for points in (content, style):
        jaw = points[16] - points[0]
        assert abs(jaw[0]) > abs(jaw[1])
        assert points[8, 1] > points[27, 1]  # chin below the top of the nose: (x, y) with y down


@pytest.fixture(scope="module")
def hopper():
    """matplotlib's Grace Hopper photo (public domain) at half size: uint8 (300, 256, 3) RGB."""
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        return np.asarray(Image.open(file).convert("RGB").resize((256, 300), Image.LANCZOS))


def assert_face_landmarks(points, face_box):
    """68 finite points, all inside the face's box (left, top, right, bottom), eyes above the mouth."""
    left, top, right, bottom = face_box
    assert points.shape == (LANDMARK_COUNT, 2) and np.isfinite(points).all()
    assert (points[:, 0] > left).all() and (points[:, 0] < right).all()
    assert (points[:, 1] > top).all() and (points[:, 1] < bottom).all()
    assert points[36:48, 1].mean() < points[48:68, 1].mean()
    assert points[36, 0] < points[45, 0]


HOPPER_FACE = (75, 75, 200, 225)  # generous box around the face in grace_hopper.jpg


@pytest.mark.slow
def test_detects_hopper_in_rgb_gray_rgba_and_uint16(hopper):
    from models.landmark_detector import detect_landmarks

    reference = detect_landmarks(hopper)
    assert_face_landmarks(reference, HOPPER_FACE)
    gray = hopper.mean(axis=2).astype(np.uint8)
    rgba = np.concatenate([hopper, np.full(hopper.shape[:2] + (1,), 255, np.uint8)], axis=2)
    uint16 = hopper.astype(np.uint16) * 257
    for variant in (gray, rgba, uint16):
        points = detect_landmarks(variant)
        assert_face_landmarks(points, HOPPER_FACE)
        assert landmark_error(points, reference) < 0.05


@pytest.mark.slow
def test_detects_on_small_and_large_images_in_input_pixels(hopper):
    import cv2

    from models.landmark_detector import detect_landmarks

    reference = detect_landmarks(hopper)
    for scale in (0.5, 4.0):
        resized = cv2.resize(hopper, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        points = detect_landmarks(resized) / scale
        assert landmark_error(points, reference) < 0.06


@pytest.mark.slow
def test_detects_astronaut_from_tensor():
    import torch
    from skimage import data

    from models.landmark_detector import detect_landmarks

    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    assert_face_landmarks(detect_landmarks(image), (150, 20, 300, 220))


def test_blank_image_raises_input_error_with_the_manual_file(tmp_path):
    from models.landmark_detector import detect_landmarks

    with pytest.raises(InputError) as info:
        detect_landmarks(np.full((128, 128, 3), 200, np.uint8), source="blank.png", manual_path="style/blank.txt")
    message = str(info.value)
    assert "blank.png" in message and "style/blank.txt" in message and '"x y"' in message and "\n" not in message


def test_mirror_index_is_an_involution():
    from models.landmark_detector import MIRRORED_INDEX

    assert sorted(MIRRORED_INDEX) == list(range(LANDMARK_COUNT))
    np.testing.assert_array_equal(MIRRORED_INDEX[MIRRORED_INDEX], np.arange(LANDMARK_COUNT))


def test_landmark_vertices_load_and_reject_bad_files(tmp_path):
    from utils.io.landmarks import load_landmark_vertices

    good = write_lines(tmp_path / "mesh.landmarks.txt", [str(i * 3) for i in range(LANDMARK_COUNT)])
    np.testing.assert_array_equal(load_landmark_vertices(good, 300), np.arange(LANDMARK_COUNT) * 3)
    for name, lines in [("short", ["1"] * 67), ("word", ["1"] * 67 + ["x"]), ("range", ["1"] * 67 + ["300"])]:
        path = write_lines(tmp_path / f"{name}.landmarks.txt", lines)
        with pytest.raises(InputError) as info:
            load_landmark_vertices(path, 300)
        assert str(path) in str(info.value)


def test_candidate_choice_drops_face_parts_and_prefers_agreeing_predictions(hopper):
    from models.landmark_detector import FaceView, hog_boxes, most_consistent

    plain = FaceView(hopper, np.eye(2, 3))
    (face, _), = hog_boxes(hopper, 0.0)
    width = face[2] - face[0]
    mouth = (face[0] + 0.3 * width, face[1] + 0.55 * width, face[0] + 0.7 * width, face[1] + 0.85 * width)
    background = (0, 0, width, width)  # the top-left corner: a wall
    shifted = tuple(v + 2 for v in face)
    assert most_consistent([(plain, mouth), (plain, face)])[1] == face
    assert most_consistent([(plain, background), (plain, face)])[1] == face
    assert most_consistent([(plain, face), (plain, shifted)])[1] == face  # a near-tie: the first listed wins


def test_boxes_of_padded_and_scaled_views_map_into_the_plain_frame(hopper):
    from models.landmark_detector import FaceView, in_frame, padded_view, rotated_view, scaled_view

    plain = FaceView(hopper, np.eye(2, 3))
    padded = padded_view(hopper, 0.25)
    pad = (padded.image.shape[1] - hopper.shape[1]) // 2
    assert pad == 75 and padded.image.shape[:2] == (450, 406)
    frame, box = in_frame(padded, (pad + 10, pad + 20, pad + 110, pad + 120), plain)
    assert frame is plain and np.allclose(box, (10, 20, 110, 120))
    frame, box = in_frame(scaled_view(hopper, 0.5), (10, 20, 60, 70), plain)
    assert frame is plain and np.allclose(box, (20.5, 40.5, 120.5, 140.5))
    rotated = rotated_view(hopper, 15.0)
    assert in_frame(rotated, (10, 20, 60, 70), plain) == (rotated, (10, 20, 60, 70))


@pytest.mark.slow
def test_weak_detection_is_a_last_resort_with_a_warning(hopper, monkeypatch):
    from models import landmark_detector

    monkeypatch.setattr(landmark_detector, "CANDIDATE_HOG_THRESHOLD", 10.0)  # no HOG box is strong enough
    monkeypatch.setattr(landmark_detector, "cnn_boxes", lambda image: [])
    with pytest.warns(landmark_detector.CheckByEyeWarning, match=r"hopper\.png: only a weak face detection"):
        points = landmark_detector.detect_landmarks(hopper, source="hopper.png")
    assert_face_landmarks(points, HOPPER_FACE)


@pytest.mark.slow
def test_scattered_predictions_come_with_a_warning(hopper, monkeypatch):
    from models import landmark_detector

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clear photo: no warning
        reference = landmark_detector.detect_landmarks(hopper, source="hopper.png")
    monkeypatch.setattr(landmark_detector, "UNCERTAIN_SPREAD", 0.0)
    with pytest.warns(landmark_detector.CheckByEyeWarning, match=r"hopper\.png: uncertain landmarks .*on the overlay"):
        points = landmark_detector.detect_landmarks(hopper, source="hopper.png")
    np.testing.assert_array_equal(points, reference)  # the warning changes nothing else


@pytest.mark.slow
def test_noise_gets_points_inside_the_image_and_a_warning():
    """Chosen behaviour: where only weak HOG boxes exist (here on random noise), landmarks come with a warning."""
    from models.landmark_detector import CheckByEyeWarning, detect_landmarks

    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with pytest.warns(CheckByEyeWarning, match="noise.png: only a weak face detection"):
        points = detect_landmarks(noise, source="noise.png")
    assert points.shape == (LANDMARK_COUNT, 2) and (points >= -0.5).all() and (points <= 255.5).all()


def test_box_from_landmarks_follows_the_points_and_matches_the_detector(hopper):
    from models.landmark_detector import box_from_landmarks, hog_boxes, predict

    (face, _), = hog_boxes(hopper, 0.0)
    points = predict(hopper, face)
    box = np.array(box_from_landmarks(points))
    np.testing.assert_allclose(box_from_landmarks(2.0 * points + [5.0, -3.0]), 2.0 * box + [5.0, -3.0, 5.0, -3.0])
    assert box[2] - box[0] == pytest.approx(box[3] - box[1])
    overlap = np.prod(np.minimum(box[2:], face[2:]) - np.maximum(box[:2], face[:2]))
    union = np.prod(box[2:] - box[:2]) + np.prod(np.subtract(face[2:], face[:2])) - overlap
    assert overlap / union > 0.7  # the box the points imply is near the one they were predicted in


@pytest.mark.slow
def test_refined_landmarks_recover_from_a_box_off_the_face(hopper):
    from models.landmark_detector import (FaceView, ensemble_landmarks, hog_boxes, prediction_spread,
                                          refined_landmarks)

    plain = FaceView(hopper, np.eye(2, 3))
    (face, _), = hog_boxes(hopper, 0.0)
    reference = ensemble_landmarks(hopper, face)
    refined = refined_landmarks(plain, face, prediction_spread(plain, face))
    np.testing.assert_allclose(refined, reference, atol=0.05 * (face[2] - face[0]))
    width = face[2] - face[0]
    off = (face[0] + 0.15 * width, face[1] - 0.1 * width, face[2] + 0.35 * width, face[3] + 0.1 * width)
    recovered = refined_landmarks(plain, off, prediction_spread(plain, off))
    assert landmark_error(recovered, reference) < 0.5 * landmark_error(ensemble_landmarks(hopper, off), reference)


def test_weak_hog_boxes_are_candidates_after_the_strong_ones(hopper, monkeypatch):
    from models import landmark_detector

    def fake_hog_boxes(image, threshold):  # a strong 40 px box and a weak 80 px one on every view
        return [((10, 10, 50, 50), 0.5), ((100, 100, 180, 180), -0.8)]

    monkeypatch.setattr(landmark_detector, "hog_boxes", fake_hog_boxes)
    monkeypatch.setattr(landmark_detector, "cnn_boxes", lambda image: [])
    candidates, weak = landmark_detector.face_candidates(hopper)
    from_weak = [box[2] - box[0] > 75 for _, box in candidates]  # 40 px boxes stay under 75 px in every frame
    assert not weak and not from_weak[0] and any(from_weak) and from_weak == sorted(from_weak)
    assert np.allclose(candidates[0][1], (10, 10, 50, 50))
