"""The on-disk layout: names made once, numbered files found in view order, the rule for a content folder's mesh."""
import os

import pytest

import run
from utils.errors import InputError
from utils.io.layout import (ContentFolder, PairFolder, content_folders, landmark_overlay, pair_folders,
                             smoothed_path, style_landmarks)


def test_numbered_files_are_found_in_view_order_and_others_ignored(tmp_path):
    folder = ContentFolder(tmp_path / "head")
    folder.path.mkdir()
    for name in ("view_10.png", "view_2.png", "view_0.png", "view_x.png", "view_1.png.old", "landmarks_2.txt",
                 "landmarks_10.txt", "landmarks_0.txt.old", "landmarks_a.txt"):
        (folder.path / name).write_text("")
    assert list(folder.views()) == [0, 2, 10]
    assert folder.views()[10] == folder.view(10)
    assert folder.landmark_files() == {2: folder.landmarks(2), 10: folder.landmarks(10)}
    assert folder.outputs(2) == [folder.view(0), folder.view(1), folder.verts2d, folder.visible, folder.cameras]


def test_the_mesh_of_a_content_folder(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    folder = ContentFolder(tmp_path / "content" / "head")
    folder.path.mkdir(parents=True)
    assert folder.mesh(models) is None  # no cameras.json, no models/head.obj
    default = models / "head.obj"
    default.write_text("")
    assert folder.mesh(models) == default
    named = tmp_path / "elsewhere.obj"
    folder.cameras.write_text(f'{{"mesh": "{named}"}}')
    assert folder.mesh(models) == default  # the named one is gone: the models folder's
    named.write_text("")
    assert folder.mesh(models) == named
    assert folder.mesh_candidates(models) == [named, default]
    folder.cameras.write_text("{not json")
    assert folder.mesh(models) == default  # an unreadable cameras.json names none


def test_run_says_which_meshes_it_looked_for(tmp_path):
    folder = tmp_path / "content" / "head"
    folder.mkdir(parents=True)
    with pytest.raises(InputError, match=r"head: its mesh \(.*models/head.obj\) is not there; .*--no-reconstruct"):
        run.mesh_of(folder, tmp_path / "models")


def test_pair_folder_names_and_the_smoothed_mesh(tmp_path):
    pair = PairFolder.of(tmp_path, "head", "ink")
    assert (pair.content, pair.style, os.fspath(pair), str(pair)) == ("head", "ink", str(pair.path), str(pair.path))
    assert pair.mesh(smooth=True) == smoothed_path(pair.mesh()) == pair.path / "mesh_smooth.obj"
    assert smoothed_path(tmp_path / "a.ply") == tmp_path / "a_smooth.obj"  # smooth.py writes .obj
    assert [p.name for p in (pair.glb(), pair.glb(smooth=True), pair.turntable(smooth=True),
                             pair.turntable_gif(smooth=True))] == \
        ["mesh.glb", "mesh_smooth.glb", "turntable_smooth.png", "turntable_smooth.gif"]
    assert pair.input_glb == tmp_path / "head" / "input.glb"
    assert pair.view_picture("scale1_iter0050", 1) == pair.intermediate / "scale1_iter0050_view1.png"
    assert pair.recon_checkpoint(3, 0) == pair.intermediate / "recon_0003_0.png"
    for k in (1, 0):
        pair.path.mkdir(parents=True, exist_ok=True)
        pair.stylized(k).write_text("")
    pair.unwarped(4).write_text("")
    assert pair.view_indices() == [0, 1, 4]


def test_pair_folders_leave_out_the_report_and_hidden_folders(tmp_path):
    for folder in ("head/ink", "head/.hidden", "bust/oil", "report_files/content", ".cache/x"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "index.html").write_text("")
    assert [(p.content, p.style) for p in pair_folders(tmp_path)] == [("bust", "oil"), ("head", "ink")]
    assert pair_folders(tmp_path / "missing") == []
    assert [f.path for f in content_folders(tmp_path / "bust")] == [tmp_path / "bust" / "oil"]
    assert content_folders(tmp_path / "missing") == []


def test_landmark_files_and_their_overlays(tmp_path):
    style = tmp_path / "style" / "ink.png"
    assert style_landmarks(style) == tmp_path / "style" / "ink.txt"
    assert landmark_overlay(style_landmarks(style)) == tmp_path / "style" / "overlays" / "ink.png"
    content = ContentFolder(tmp_path / "head")
    assert content.landmark_overlay(1) == tmp_path / "head" / "overlays" / "landmarks_1.png"
