"""Bad input and faults, second suite: hostile files, killed runs and a full disk. Each case gives one clear line
naming the file, the rest of the batch goes on, and nothing is lost or read that should not be."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from utils.io.images import image_size, read_image_array, read_image_downscaled

ROOT = Path(__file__).resolve().parents[1]
EXIF_ORIENTATION = 0x0112


def oriented_jpeg(path, orientation=6):
    """A 40x20 JPEG (left half red, right half blue) carrying the EXIF orientation tag; returns the picture a
    viewer shows, as PIL's exif_transpose gives it: (H, W, 3) float in [0, 1]."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20, 0] = 255
    pixels[:, 20:, 2] = 255
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image), np.float32) / 255.0


# ---- a phone photo's EXIF orientation is applied wherever a photo or style image is read ------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_by_every_reader(tmp_path, orientation):
    path = tmp_path / "phone.jpg"
    upright = oriented_jpeg(path, orientation)
    assert np.abs(read_image_array(path) - upright).max() < 0.05
    assert image_size(path) == upright.shape[:2]
    small, scale, size = read_image_downscaled(path, 20)  # decoded at a reduced size
    assert size == upright.shape[:2] and max(small.shape[:2]) == 20
    assert np.allclose(scale, np.array(small.shape[1::-1]) / np.array(upright.shape[1::-1]))
    reduced = np.asarray(Image.fromarray((upright * 255).astype(np.uint8)).resize(small.shape[1::-1]), np.float32)
    assert np.abs(small - reduced / 255.0).mean() < 0.05


def test_acquire_reads_a_phone_photo_upright(tmp_path):
    from utils.acquisition.photo import load_photo

    path = tmp_path / "phone.jpg"
    pixels = np.zeros((200, 400, 3), np.uint8)
    pixels[:, :200, 0] = 255  # stored lying on its side: red on the left, shown on top
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.fromarray(pixels).save(path, exif=exif)
    photo, _ = load_photo(path)
    assert photo.shape[:2] == (400, 200) and photo[:200, :, 0].mean() > 200 and photo[200:, :, 0].mean() < 50


# ---- a hand edit moved aside by a re-render survives the next re-renders -------------------------------------------

def test_landmarks_set_aside_twice_keep_the_first_edit(tmp_path):
    from utils.rendering.content import set_aside_landmarks

    landmarks = tmp_path / "landmarks_0.txt"
    landmarks.write_text("hand edit\n")
    assert set_aside_landmarks(tmp_path, keep=set()) == ["landmarks_0.txt -> landmarks_0.txt.old"]
    for made in ["detected\n", "detected again\n", "detected again\n"]:  # correspondences.py, then a re-render
        landmarks.write_text(made)
        set_aside_landmarks(tmp_path, keep=set())
    kept = sorted(path.read_text() for path in tmp_path.glob("landmarks_0.txt.old*"))
    assert kept == sorted(["hand edit\n", "detected\n", "detected again\n"])  # a repeat is not kept twice
    assert (tmp_path / "landmarks_0.txt.old").read_text() == "hand edit\n" and not landmarks.exists()


# ---- two photos with one stem would give one mesh: refused, naming both; the others go on -------------------------

def test_two_photos_with_one_stem_are_refused_and_the_rest_go_on(tmp_path, monkeypatch, capsys):
    import sys
    from types import SimpleNamespace

    import acquire

    photos, out = tmp_path / "photos", tmp_path / "models"
    photos.mkdir()
    for name in ["same.jpg", "same.png", "other.png"]:
        Image.new("RGB", (200, 200)).save(photos / name)
    acquired = []

    def fake_acquire(photo, out_dir, settings):
        acquired.append(photo.name)
        return SimpleNamespace(notes=[], mesh=SimpleNamespace(verts=[0]), seen=np.ones(1))

    monkeypatch.setattr(acquire, "acquire_file", fake_acquire)
    for extra in [[], ["--force"]]:
        acquired.clear()
        monkeypatch.setattr(sys, "argv", ["acquire.py", str(photos), "--out", str(out), *extra])
        with pytest.raises(SystemExit) as stop:
            acquire.main()
        errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
        assert stop.value.code == 1 and acquired == ["other.png"]
        assert len(errors) == 1 and "same.jpg" in errors[0] and "same.png" in errors[0], errors


# ---- one colour a hair above 1 in a 0-1 mesh does not make the whole file 0-255 -----------------------------------

def write_obj(path, vertex_lines, extra=""):
    """An OBJ with the given "v ..." lines and one triangle per three vertices."""
    faces = "".join(f"f {i} {i + 1} {i + 2}\n" for i in range(1, len(vertex_lines) + 1, 3))
    path.write_text("".join(line + "\n" for line in vertex_lines) + extra + faces)
    return path


def test_a_rounding_error_above_one_keeps_colours_in_zero_to_one(tmp_path):
    from utils.io.mesh import load_mesh

    vertices = ["v 0 0 0 0.5 0.5 0.5", "v 1 0 0 1.000001 0.2 0.5", "v 0 1 0 0.1 0.9 0.3"]
    colors = load_mesh(write_obj(tmp_path / "unit.obj", vertices)).colors
    assert np.allclose(colors.numpy()[[0, 2]], [[0.5, 0.5, 0.5], [0.1, 0.9, 0.3]])
    vertices = ["v 0 0 0 128 128 128", "v 1 0 0 255 51 0", "v 0 1 0 2 200 77"]
    assert np.allclose(load_mesh(write_obj(tmp_path / "bytes.obj", vertices)).colors.numpy()[1], [1, 0.2, 0])


# ---- a mesh's .mtl and texture paths may not leave the mesh's folder ------------------------------------------------

UV_TRIANGLE = ["v 0 0 0", "v 1 0 0", "v 0 1 0"]
UV_FACE_TAIL = "vt 0 0\nvt 1 0\nvt 0 1\n"


def textured_obj(folder, mtllib, map_kd="tex.png", vt=UV_FACE_TAIL):
    """folder/mesh.obj: one textured triangle whose material library is ``mtllib``; beside it mesh.mtl, whose map_Kd
    line names ``map_kd``, and tex.png, a small texture. ``vt``: the texture coordinate lines."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (200, 40, 40)).save(folder / "tex.png")
    (folder / "mesh.mtl").write_text(f"newmtl skin\nKd 1 1 1\nmap_Kd {map_kd}\n")
    text = f"mtllib {mtllib}\n" + "".join(line + "\n" for line in UV_TRIANGLE) + vt + "usemtl skin\nf 1/1 2/2 3/3\n"
    (folder / "mesh.obj").write_text(text)
    return folder / "mesh.obj"


@pytest.mark.parametrize("mtllib, map_kd", [
    ("../secret.mtl", "tex.png"),  # the material library outside
    ("mesh.mtl", "../secret.png"),  # the texture outside
    ("mesh.mtl", "{absolute}"),  # an absolute texture path
    ("{absolute_mtl}", "tex.png"),
])
def test_paths_out_of_the_mesh_folder_are_refused(tmp_path, mtllib, map_kd):
    from utils.errors import InputError
    from utils.io.mesh import load_mesh

    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "secret.png")
    (tmp_path / "secret.mtl").write_text("newmtl skin\nmap_Kd secret.png\n")
    mtllib = mtllib.format(absolute_mtl=tmp_path / "secret.mtl")
    mesh_path = textured_obj(tmp_path / "download", mtllib, map_kd.format(absolute=tmp_path / "secret.png"))
    with pytest.raises(InputError, match="outside the mesh's folder") as refused:
        load_mesh(mesh_path)
    assert "secret" in str(refused.value) and "\n" not in str(refused.value)


def test_a_texture_in_a_subfolder_is_read(tmp_path):
    from utils.io.mesh import load_mesh

    mesh_path = textured_obj(tmp_path, "mesh.mtl", "maps/skin.png")
    (tmp_path / "maps").mkdir()
    Image.new("RGB", (4, 4), (0, 255, 0)).save(tmp_path / "maps/skin.png")
    assert np.allclose(load_mesh(mesh_path).texture.numpy()[0, 0], [0, 1, 0])


# ---- a texture file name with a space is read, and named whole when missing ----------------------------------------

def test_a_texture_name_with_a_space_is_that_file(tmp_path):
    from utils.errors import InputError
    from utils.io.mesh import load_mesh

    mesh_path = textured_obj(tmp_path, "mesh.mtl", "-s 1 1 1 my skin.png")
    with pytest.raises(InputError, match="'my skin.png' not found"):
        load_mesh(mesh_path)
    Image.new("RGB", (4, 4), (0, 0, 255)).save(tmp_path / "my skin.png")
    assert np.allclose(load_mesh(mesh_path).texture.numpy()[0, 0], [0, 0, 1])


# ---- a malformed vt line: one line, and the other meshes of the call are rendered ----------------------------------

def test_a_malformed_vt_line_is_one_line_and_the_other_meshes_render(tmp_path):
    import subprocess
    import sys

    from utils.errors import InputError
    from utils.io.mesh import load_mesh

    bad = textured_obj(tmp_path / "bad", "mesh.mtl", vt="vt 1\nvt 1 0\nvt 0 1\n")
    with pytest.raises(InputError, match=r"mesh.obj:5: malformed 'vt' line"):
        load_mesh(bad)
    good = textured_obj(tmp_path / "good", "mesh.mtl")
    bad_copy = tmp_path / "a_bad.obj"  # sorted first, so the good one comes after it
    bad_copy.write_text(bad.read_text().replace("mtllib mesh.mtl", "mtllib bad/mesh.mtl"))
    result = subprocess.run([sys.executable, "rendering.py", bad_copy, good, "--out", tmp_path / "content",
                             "--size", "32"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "a_bad.obj:5: malformed 'vt' line" in result.stderr
    assert (tmp_path / "content/mesh/view_0.png").is_file()


def test_acquire_notes_name_the_photo_not_image(monkeypatch):
    import warnings

    from models.landmark_detector import CheckByEyeWarning
    from utils.acquisition import face as acquisition_face

    def weak_detection(image, source="image", manual_path=None):  # the robust detector's warning, worded by source
        warnings.warn(f"{source}: only a weak face detection", CheckByEyeWarning)
        return np.zeros((68, 2))

    monkeypatch.setattr(acquisition_face, "hog_boxes", lambda image, threshold: [])  # plain HOG finds nothing
    monkeypatch.setattr(acquisition_face, "detect_landmarks", weak_detection)
    points = np.column_stack([np.linspace(20, 60, 478), np.linspace(30, 90, 478), np.zeros(478)])
    found = acquisition_face.Face(points=points, oval=np.arange(36), faces_found=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        acquisition_face.face_landmarks(np.zeros((120, 100, 3), np.uint8), found, "photos/phone.jpg")
    assert [str(w.message) for w in caught] == ["photos/phone.jpg: only a weak face detection"]


# ---- smooth.py goes on after a bad mesh ---------------------------------------------------------------------------

def test_smooth_goes_on_after_a_bad_mesh(tmp_path):
    import subprocess
    import sys

    from utils.io.mesh import Mesh, save_obj

    import torch

    bad, good = tmp_path / "a" / "mesh.obj", tmp_path / "b" / "mesh.obj"
    bad.parent.mkdir()
    bad.write_text("v 0 0 0\nv 1 0 0\nf 1 2 9\n")
    grid = torch.tensor([[x, y, 0.1 * (x * y % 2)] for y in range(4) for x in range(4)], dtype=torch.float32)
    faces = torch.tensor([[q, q + 1, q + 4] for q in range(11) if q % 4 != 3], dtype=torch.int64)
    save_obj(good, Mesh(verts=grid, faces=faces))
    result = subprocess.run([sys.executable, "smooth.py", "--output", tmp_path], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert f"{bad}:3: face index 9 is out of range" in result.stderr
    assert "1 of 2 mesh(es) failed" in result.stderr.splitlines()[-1]
    assert (good.parent / "mesh_smooth.obj").is_file() and not (bad.parent / "mesh_smooth.obj").exists()


# ---- acquire.py removes the temporary files of a killed run -------------------------------------------------------

def test_acquire_removes_temporaries_left_by_a_killed_run(tmp_path, monkeypatch, capsys):
    import sys
    from types import SimpleNamespace

    import acquire

    out = tmp_path / "models"
    out.mkdir()
    left = [out / "face.tmp-999999999.obj", out / "face.landmarks.tmp-999999999-3.txt"]  # no such process
    for path in left:
        path.write_text("half written")
    Image.new("RGB", (200, 200)).save(tmp_path / "face.png")
    monkeypatch.setattr(acquire, "acquire_file", lambda photo, out_dir, settings: SimpleNamespace(
        notes=[], mesh=SimpleNamespace(verts=[0]), seen=np.ones(1)))
    monkeypatch.setattr(sys, "argv", ["acquire.py", str(tmp_path / "face.png"), "--out", str(out)])
    acquire.main()
    assert not any(path.exists() for path in left)
    assert "removed 2 temporary file(s)" in capsys.readouterr().out


# ---- a style image with no face is refused with acquire.py's words, not given 68 guessed points -------------------

def test_a_style_image_without_a_face_is_refused(tmp_path, monkeypatch, capsys):
    import sys

    import correspondences

    style = tmp_path / "style"
    style.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)  # dlib: only weak boxes
    Image.fromarray(noise).save(style / "noise.png")
    (tmp_path / "content/head").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "content/head/view_0.png")  # a content folder, left out by --only
    monkeypatch.setattr(sys, "argv", ["correspondences.py", "--content", str(tmp_path / "content"), "--style",
                                      str(style), "--models", str(tmp_path / "models"), "--only", "noise"])
    with pytest.raises(SystemExit) as stop:
        correspondences.main()
    output = capsys.readouterr()
    errors = [line for line in output.out.splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and len(errors) == 1, output
    assert "noise.png: no face found" in errors[0] and "noise.txt" in errors[0]
    assert not (style / "noise.txt").exists()


def test_a_coffee_cup_is_not_a_face():
    import skimage.data

    from models.landmark_detector import detect_landmarks
    from utils.acquisition.face import sees_a_face
    from utils.errors import InputError

    with pytest.raises(InputError, match="coffee.png: no face found"):  # dlib's boxes on it scatter widely
        detect_landmarks(skimage.data.coffee(), "coffee.png", "coffee.txt", sees_a_face)
