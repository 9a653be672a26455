"""Mesh I/O: round trips (colours, UVs, polygons, PLY) and bad files."""
import numpy as np
import pytest
import torch

from utils.errors import InputError
from utils.io.images import save_image
from utils.io.mesh import Mesh, load_mesh, save_obj, to_pytorch3d

QUAD_OBJ = """# a unit quad as one polygon and a triangle
v 0 0 0 255 0 0
v 1 0 0 0 255 0
v 1 1 0 0 0 255
v 0 1 0 255 255 255
v 2 0 0 128 128 128
f 1 2 3 4
f 2 5 3
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_polygons_are_fan_triangulated_in_order_and_colours_scaled(tmp_path):
    mesh = load_mesh(write(tmp_path, "quad.obj", QUAD_OBJ))
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 2]]
    assert torch.allclose(mesh.colors[0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(mesh.colors[4], torch.full((3,), 128 / 255))


def test_round_trip_keeps_vertices_faces_and_colours(tmp_path):
    generator = torch.Generator().manual_seed(0)
    mesh = Mesh(verts=torch.randn(50, 3, generator=generator), faces=torch.randint(0, 50, (80, 3), generator=generator),
                colors=torch.rand(50, 3, generator=generator))
    save_obj(tmp_path / "out.obj", mesh)
    back = load_mesh(tmp_path / "out.obj")
    assert torch.equal(back.faces, mesh.faces)
    assert torch.allclose(back.verts, mesh.verts, atol=1e-5)
    assert torch.allclose(back.colors, mesh.colors, atol=1e-5)
    assert not list(tmp_path.glob("*.tmp-*"))


def test_uv_textured_obj(tmp_path):
    texture = np.zeros((8, 8, 3), dtype=np.float32)
    texture[:, :4] = [1.0, 0.0, 0.0]  # left half red
    texture[:, 4:] = [0.0, 0.0, 1.0]  # right half blue
    save_image(tmp_path / "tex.png", texture)
    write(tmp_path, "m.mtl", "newmtl skin\nmap_Kd tex.png\n")
    obj = write(tmp_path, "m.obj", "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
                "vt 0.1 0.5\nvt 0.9 0.5\nvt 0.9 0.9\nvt 0.1 0.9\nusemtl skin\nf 1/1 2/2 3/3 4/4\n")
    mesh = load_mesh(obj)
    assert mesh.texture.shape == (8, 8, 3) and mesh.faces_uvs.tolist() == [[0, 1, 2], [0, 2, 3]]
    colors = mesh.vertex_colors()
    assert torch.allclose(colors[0], torch.tensor([1.0, 0.0, 0.0])) and torch.allclose(colors[1], torch.tensor([0.0, 0.0, 1.0]))
    assert to_pytorch3d(mesh).textures.__class__.__name__ == "TexturesUV"


def test_ply_with_vertex_colours(tmp_path):
    ply = ("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
           "property uchar red\nproperty uchar green\nproperty uchar blue\nelement face 1\n"
           "property list uchar int vertex_indices\nend_header\n0 0 0 255 0 0\n1 0 0 0 255 0\n0 1 0 0 0 255\n3 0 1 2\n")
    mesh = load_mesh(write(tmp_path, "t.ply", ply))
    assert mesh.faces.tolist() == [[0, 1, 2]]
    assert torch.allclose(mesh.colors, torch.eye(3))


@pytest.mark.parametrize("name, text, words", [
    ("empty.obj", "", "no vertices"),
    ("points.obj", "v 0 0 0\nv 1 0 0\n", "no faces"),
    ("nan.obj", "v 0 0 nan\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN"),
    ("range.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "out of range"),
    ("garbage.obj", "v 0 0 zero\n", "malformed"),
    ("notex.obj", "mtllib missing.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "material library"),
    ("broken.ply", "ply\nformat ascii 1.0\nelement vertex 3\n", "PLY"),
    ("short.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n0\n", "PLY"),
    ("mesh.stl", "solid", "unsupported"),
])
def test_bad_files_give_one_line_naming_the_file(tmp_path, name, text, words):
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as error:
        load_mesh(path)
    message = str(error.value)
    assert name in message and words in message and "\n" not in message


def test_unreadable_texture_is_reported(tmp_path):
    write(tmp_path, "m.mtl", "newmtl a\nmap_Kd tex.png\n")
    (tmp_path / "tex.png").write_bytes(b"not a png")
    path = write(tmp_path, "m.obj", "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    with pytest.raises(InputError, match="tex.png"):
        load_mesh(path)


def test_missing_file():
    with pytest.raises(InputError, match="not found"):
        load_mesh("no/such/mesh.obj")


def test_real_mesh_keeps_vertex_order(rrps_data):
    path = rrps_data / "meshes" / "00319.obj"
    mesh = load_mesh(path)
    first = [float(t) for t in path.read_text().split("\n", 1)[0].split()[1:4]]
    assert torch.allclose(mesh.verts[0], torch.tensor(first)) and mesh.colors is not None
