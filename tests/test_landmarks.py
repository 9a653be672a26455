"""The landmark file loader/writer (utils/landmarks.py) and the dlib detector wrapper (models/landmark_detector.py)."""
import numpy as np
import pytest

from utils.errors import InputError
from utils.landmarks import LANDMARK_COUNT, landmark_error, load_landmarks, save_landmarks


def face_points():
    """A plausible upright face in a 200 px image: (68, 2) pixel (x, y); a U-shaped jaw, the rest inside it."""
    jaw_angles = np.linspace(0.0, np.pi, 17)
    jaw = np.stack([100 - 60 * np.cos(jaw_angles), 90 + 60 * np.sin(jaw_angles)], 1)
    inner = np.random.default_rng(0).uniform([60, 50], [140, 130], size=(LANDMARK_COUNT - 17, 2))
    points = np.concatenate([jaw, inner])
    points[[36, 45]] = [[70, 80], [130, 80]]
    return np.round(points, 3)


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
