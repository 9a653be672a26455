"""Bad input and faults: each case gives one clear line, a sensible exit code, and no lost, mixed or
half-written output. Cases about a script's exit code, lines, kills or concurrency run it in a subprocess."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from tests.synthetic import ROOT, RUN_FLAGS, face_points, run_main, sphere_mesh
from utils.batch import is_complete, run_batch
from utils.device import run_memory_estimate
from utils.errors import InputError, cli_entry
from utils.io.landmarks import LandmarkOrderWarning, load_landmarks
from utils.io.lock import folder_lock
from utils.io.images import read_image_array
from utils.geometry.smoothing import taubin_smooth
from utils.io.mesh import Mesh, load_mesh, save_obj


def script(*args, cwd=ROOT, timeout=600):  # a guard against hangs, generous for a loaded machine
    """Run ``python <args>`` from the project root; returns the CompletedProcess (text stdout/stderr)."""
    return subprocess.run([sys.executable, "-X", "faulthandler", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def last_line(text):
    """The last non-empty line of a script's output (after any progress bar)."""
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()][-1]


def render(mesh_path, out, *flags):
    """rendering.py on one mesh at 32 px (a subprocess)."""
    return script("rendering.py", mesh_path, "--out", out, "--size", "32", *flags)


# ---- 1. a re-render keeps hand-corrected landmarks when the views did not change -------------------------------

@pytest.mark.slow
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


# ---- 2. a pair being worked on is locked ---------------------------------------------------------------------

RUN_DRIVER = ("import sys; import run; from tests.synthetic import tiny_network_loader; "
              "run.load_feature_network = tiny_network_loader; run.main(sys.argv[1:])")


def run_script(project, output, *extra):
    """run.py on the tiny project (test_pipeline's), with its tiny feature network, in a subprocess."""
    return script("-c", RUN_DRIVER, "--content-dir", project / "content", "--style-dir", project / "style",
                  "--output", output, "--no-report", *RUN_FLAGS, *extra)


@pytest.mark.slow
def test_second_run_on_a_busy_pair_says_so_and_leaves_it(project):
    folder = project / "output" / "face" / "toon"
    with folder_lock(folder) as held:  # another run is working on the pair
        assert held
        result = run_script(project, project / "output", "--seed", "1")
    assert result.returncode == 0, result.stderr  # busy is not a failure of the pair
    said = [line for line in result.stdout.splitlines() if "another run is working" in line]
    assert len(said) == 1 and "face x toon" in said[0]
    assert "busy 1" in result.stdout
    assert not is_complete(folder) and not list(folder.glob("*.png"))


def test_a_killed_run_does_not_leave_its_pair_locked(tmp_path):
    holder = ("import os, sys; from utils.io.lock import folder_lock\n"
              "with folder_lock(sys.argv[1]) as held:\n    assert held\n    os.kill(os.getpid(), 9)\n")
    assert script("-c", holder, tmp_path / "pair").returncode == -9
    with folder_lock(tmp_path / "pair") as held:
        assert held


# ---- 3. a kill during a write leaves nothing for ever ---------------------------------------------------------

def test_temporary_file_of_a_killed_write_is_swept_on_the_next_run(tmp_path):
    folder = tmp_path / "output" / "face" / "toon"
    writer = ("import os, sys; from utils.io.files import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'v 0 0 0\\n' * 1000)\n"
              "    os.kill(os.getpid(), 9)\n")
    assert script("-c", writer, folder / "intermediate" / "mesh.obj").returncode == -9
    left = list(folder.rglob("*.tmp-*"))
    assert len(left) == 1 and left[0].name.startswith("mesh.tmp-")  # what a SIGKILL leaves: recognisable
    alive = folder / f"stylized_0.tmp-{os.getpid()}.png"  # a live writer's file is not touched
    alive.write_bytes(b"being written")
    lines = []
    summary = run_batch([("face", "toon")], lambda pair: tmp_path / "output" / pair[0] / pair[1], lambda pair: {},
                        log=lines.append)
    assert summary.done == ["face x toon"] and not left[0].exists() and alive.exists()
    assert any("removed 1 temporary file" in line for line in lines)


# ---- 4. degenerate landmarks are rejected; a non-finite loss stops its pair, not the batch ---------------------

@pytest.mark.parametrize("points", [np.full((68, 2), 40.0), 40 + np.random.default_rng(0).random((68, 2)),
                                    np.concatenate([np.full((20, 2), 5.0), np.random.default_rng(1).random((48, 2)) * 60])],
                         ids=["identical", "one-pixel-spread", "many-repeated"])
def test_degenerate_landmarks_are_rejected_naming_the_file(tmp_path, points):
    path = tmp_path / "style.txt"
    np.savetxt(path, points, fmt="%.3f")
    with pytest.raises(InputError, match="style.txt.*not a face's landmarks"):
        load_landmarks(path)


@pytest.mark.slow
def test_degenerate_style_landmarks_in_run_py_give_one_line(project):
    (project / "style" / "toon.txt").write_text("0 0\n" * 68)
    result = run_script(project, project / "output")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "toon.txt" in last_line(result.stderr) and "not a face's landmarks" in last_line(result.stderr)


@pytest.mark.slow
def test_a_pair_whose_loss_turns_nan_stops_and_the_batch_goes_on(project):
    (project / "style" / "flat.png").write_bytes((project / "style" / "toon.png").read_bytes())
    (project / "style" / "flat.txt").write_text("40 40\n" * 68)  # let through: the loss turns NaN (was exit 139)
    driver = "import utils.io.landmarks as l; l.check_not_degenerate = lambda *a: None\n" + RUN_DRIVER
    result = script("-c", driver, "--content-dir", project / "content", "--style-dir", project / "style",
                    "--output", project / "output", "--no-report", *RUN_FLAGS)
    assert result.returncode == 1, result.stderr[-2000:]
    said = [line for line in result.stdout.splitlines() if line.startswith("face x flat: failed")]
    assert len(said) == 1 and "non-finite" in said[0]
    assert is_complete(project / "output" / "face" / "toon") and not is_complete(project / "output" / "face" / "flat")


# ---- 5. nothing silently wrong -----------------------------------------------------------------------------

def tilted_face(degrees):
    """The synthetic upright face (tests/synthetic.py) turned by ``degrees`` about the image centre (200 px):
    (68, 2) x, y."""
    turn = np.radians(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return (face_points() - 100) @ rotation.T + 100


@pytest.mark.parametrize("line_format", ["{x:.3f} {y:.3f}", "{y:.3f}, {x:.3f}"], ids=["x y", "row, col"])
def test_auto_order_keeps_the_files_own_form_for_a_tilted_head_and_warns(tmp_path, line_format):
    points = tilted_face(60)  # both readings are plausible faces: taking the more upright would transpose "x y"
    path = tmp_path / "tilted.txt"
    path.write_text("".join(line_format.format(x=x, y=y) + "\n" for x, y in points))
    with pytest.warns(LandmarkOrderWarning, match="tilted.txt"):
        loaded = load_landmarks(path, image_size=200)
    np.testing.assert_allclose(loaded, points, atol=1e-3)


def test_a_script_shows_a_landmark_doubt_in_one_line(tmp_path, capsys):
    path = tmp_path / "tilted.txt"
    path.write_text("".join(f"{x:.3f} {y:.3f}\n" for x, y in tilted_face(60)))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        cli_entry(lambda: load_landmarks(path, image_size=200))()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {path}: read as xy")


def test_auto_order_swaps_only_a_clearly_implausible_reading(tmp_path, recwarn):
    points = face_points()
    path = tmp_path / "upright.txt"
    path.write_text("".join(f"{x}, {y}\n" for x, y in points))  # "x, y": read as row, col it stands on its side
    np.testing.assert_allclose(load_landmarks(path, image_size=200), points)
    assert not [w for w in recwarn if issubclass(w.category, LandmarkOrderWarning)]


def test_outside_the_image_advice_names_no_python_argument(tmp_path):
    path = tmp_path / "far.txt"
    path.write_text("".join(f"{x + 300} {y}\n" for x, y in face_points()))
    with pytest.raises(InputError) as error:
        load_landmarks(path, image_size=200)
    assert "far.txt" in str(error.value) and "order=" not in str(error.value)


@pytest.mark.slow
def test_a_mesh_at_any_scale_is_framed_and_rendered(tmp_path):
    ball = sphere_mesh(1)
    save_obj(tmp_path / "tiny.obj", ball.with_verts(ball.verts * 1e-6 + 5e-6))
    result = render(tmp_path / "tiny.obj", tmp_path / "content")
    assert result.returncode == 0, result.stderr[-2000:]
    visible = np.load(tmp_path / "content" / "tiny" / "visible.npy")
    assert visible.mean(0).min() > 0.25  # about a third of a coarse sphere's vertices face the camera
    image = read_image_array(tmp_path / "content" / "tiny" / "view_0.png")
    assert (image.min(-1) < 0.9).mean() > 0.3  # the ball fills the frame


@pytest.mark.slow
def test_a_view_that_sees_no_vertex_is_an_error_naming_the_mesh(tmp_path):
    save_obj(tmp_path / "ball.obj", sphere_mesh(1))
    result = render(tmp_path / "ball.obj", tmp_path / "content", "--look-at", "100", "0", "0")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "ball.obj" in last_line(result.stderr) and "no vertex is visible" in last_line(result.stderr)
    assert not (tmp_path / "content" / "ball" / "cameras.json").exists()


def test_a_truncated_jpeg_is_an_error_naming_the_file(tmp_path):
    pixels = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    whole = tmp_path / "whole.jpg"
    Image.fromarray(pixels).save(whole)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    assert read_image_array(whole).shape == (64, 64, 3)
    with pytest.raises(InputError, match="cut.jpg: damaged or truncated JPEG"):
        read_image_array(cut)


# ---- 6. an output that cannot be written is found before any work -------------------------------------------

@pytest.mark.slow
def test_unwritable_output_is_reported_before_any_work(project, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_script(project, blocker / "output")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = last_line(result.stderr)
    assert line.startswith("error:") and "a_file" in line and "--output" in line
    assert "->" not in result.stdout  # no pair started

    save_obj(tmp_path / "ball.obj", sphere_mesh(1))
    result = render(tmp_path / "ball.obj", blocker / "content")
    assert result.returncode == 2 and "--out" in last_line(result.stderr) and "Traceback" not in result.stderr


def test_a_full_disk_while_writing_gives_one_line():
    driver = ("import errno, utils.errors as e\n@e.cli_entry\ndef main():\n"
              "    raise OSError(errno.ENOSPC, 'No space left on device', 'output/face/toon/mesh.obj')\nmain()\n")
    result = script("-c", driver)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "mesh.obj: No space left on device" in last_line(result.stderr)


# ---- 8. smaller ones -------------------------------------------------------------------------------------------

def test_one_bad_mesh_does_not_stop_rendering_the_others(tmp_path):
    save_obj(tmp_path / "ball.obj", sphere_mesh(1))
    (tmp_path / "bad.obj").write_text("v 0 0 0\n")
    result = script("rendering.py", tmp_path / "bad.obj", tmp_path / "ball.obj", "--out", tmp_path / "content",
                    "--size", "32")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (tmp_path / "content" / "ball" / "cameras.json").is_file()
    errors = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "bad.obj" in errors[0] and "1 of 2 mesh(es) failed (bad.obj" in last_line(result.stderr)


@pytest.mark.slow
def test_correspondences_without_a_style_folder_says_there_is_nothing_to_do(project):
    result = script("correspondences.py", "--content", project / "content", "--style", project / "no_style",
                    "--models", project / "models")
    assert result.returncode == 0
    assert any("no_style: no such style folder" in line and "nothing to do" in line
               for line in result.stdout.splitlines())


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(f"{x} {y}\n" for x, y in face_points()).encode())
    np.testing.assert_allclose(load_landmarks(path, image_size=200), face_points())


def test_a_binary_file_named_obj_is_not_a_text_obj(tmp_path):
    path = tmp_path / "model.obj"
    path.write_bytes(b"v 0 0 0\n" * 100 + bytes(range(256)) * 40)
    with pytest.raises(InputError, match=r"model.obj: not a text OBJ"):
        load_mesh(path)


@pytest.mark.slow
def test_smoothing_a_single_triangle_matches_meshlab_and_says_it_shrank(tmp_path):
    import pymeshlab
    import torch

    verts, faces = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float), np.array([[0, 1, 2]])
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(verts, faces))
    meshes.apply_coord_taubin_smoothing(lambda_=0.7, mu=-0.53, stepsmoothnum=20)
    ours = taubin_smooth(torch.tensor(verts), torch.tensor(faces)).numpy()
    np.testing.assert_allclose(ours, meshes.current_mesh().vertex_matrix(), atol=1e-6)
    save_obj(tmp_path / "tri.obj", Mesh(verts=torch.tensor(verts, dtype=torch.float32), faces=torch.tensor(faces)))
    result = script("smooth.py", tmp_path / "tri.obj")
    assert result.returncode == 0 and "tri_smooth.obj: shrank to 0%" in result.stdout


# ---- 7. memory: large style images are detected on a downscaled copy -----------------------------------------

def test_large_style_image_is_detected_downscaled_and_points_map_back(project, monkeypatch):
    import correspondences

    height, width = 3000, 4000
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (height, 1))] * 3, -1)).save(project / "style" / "big.jpg")
    seen = []

    def detect(image, *args):  # the detector's answer on the copy it is given: a face filling its centre
        seen.append(image.shape)
        return face_points() / 200 * [image.shape[1], image.shape[0]]

    monkeypatch.setattr(correspondences, "detect_landmarks", detect)
    monkeypatch.setattr(sys, "argv", ["correspondences.py", "--content", str(project / "content"), "--style",
                                      str(project / "style"), "--models", str(project / "models"), "--only", "big"])
    correspondences.main()
    assert seen and max(seen[0][:2]) <= correspondences.WORKING_MAX_SIDE
    expected = (face_points() / 200 * [seen[0][1], seen[0][0]] + 0.5) / [seen[0][1] / width, seen[0][0] / height] - 0.5
    np.testing.assert_allclose(load_landmarks(project / "style" / "big.txt"), expected, atol=1e-3)
    assert max(Image.open(project / "style" / "overlays" / "big.png").size) <= 1.5 * correspondences.WORKING_MAX_SIDE


@pytest.mark.slow
def test_a_mesh_expected_to_need_more_memory_than_available_is_said_before_work(project, monkeypatch, capsys):
    import utils.device

    monkeypatch.setattr(utils.device, "available_memory", lambda: 2**20)  # a machine with 1 MiB free
    assert run_main(project, project / "output", "--no-report", "--no-reconstruct") == 0
    lines = capsys.readouterr().out.splitlines()
    warned = [i for i, line in enumerate(lines) if line.startswith("warning: face (625 vertices)")]
    started = [i for i, line in enumerate(lines) if "face x toon ->" in line]
    assert len(warned) == 1 and warned[0] < started[0] and "GiB available" in lines[warned[0]]
    assert run_memory_estimate(1_000_000) > 10 * 2**30  # about what a 2M-face mesh took (12.9 GB)


# ---- cases that already worked, kept working --------------------------------------------------------------------

@pytest.mark.parametrize("name, content, load, expected", [
    ("empty.txt", b"", load_landmarks, "found no points"),
    ("short.txt", b"1 2\n" * 67, load_landmarks, "found 67 points"),
    ("nan.obj", b"v 0 0 nan\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", load_mesh, "NaN or infinite"),
    ("cloud.obj", b"v 0 0 0\nv 1 0 0\n", load_mesh, "no faces"),
    ("noise.png", b"not an image at all", read_image_array, "not a readable image"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_bad_files_that_already_gave_one_line_still_do(tmp_path, name, content, load, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"{name}.*{expected}"):
        load(path)


@pytest.mark.slow
def test_unknown_style_name_in_run_py_is_one_line(project):
    result = run_script(project, project / "output", "--style", "nonexistent")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nonexistent" in last_line(result.stderr) and "toon" in last_line(result.stderr)
