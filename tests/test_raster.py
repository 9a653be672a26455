"""FastMeshRasterizer against PyTorch3D's MeshRasterizer: fragments, gradients, edge cases, renderers."""
import pytest
import torch
from pytorch3d.ops import interpolate_face_attributes
from pytorch3d.renderer import (FoVOrthographicCameras, FoVPerspectiveCameras, HardPhongShader, MeshRasterizer,
                                MeshRenderer, PointLights, RasterizationSettings, SoftPhongShader, TexturesVertex,
                                look_at_view_transform)
from pytorch3d.structures import Meshes
from pytorch3d.utils import ico_sphere

import utils.rendering.raster as raster
from utils.rendering.raster import FastMeshRasterizer, make_rasterizer

CAMERA_TYPES = {"perspective": FoVPerspectiveCameras, "orthographic": FoVOrthographicCameras}


def bumpy_sphere(level=3, scale=0.8, seed=0):
    """An icosphere with randomly scaled radii (so depths and face sizes vary), vertex colours attached."""
    generator = torch.Generator().manual_seed(seed)
    sphere = ico_sphere(level)
    verts = sphere.verts_packed() * scale * (1 + 0.15 * torch.rand(len(sphere.verts_packed()), 1,
                                                                   generator=generator))
    colors = torch.rand(verts.shape, generator=generator)
    return Meshes([verts], [sphere.faces_packed()], textures=TexturesVertex([colors]))


def two_view_cameras(kind="perspective", distance=2.7):
    """Two cameras of the given kind looking at the origin from different angles."""
    R, T = look_at_view_transform(distance, torch.tensor([10.0, 35.0]), torch.tensor([0.0, 70.0]))
    return CAMERA_TYPES[kind](R=R, T=T)


def rasterize_both(meshes, cameras, **settings):
    """Fragments from PyTorch3D's rasterizer and from the fast one with the same settings."""
    raster_settings = RasterizationSettings(**{"image_size": 80, **settings})
    return (MeshRasterizer(cameras, raster_settings)(meshes),
            FastMeshRasterizer(cameras, raster_settings)(meshes))


def assert_fragments_match(reference, fast):
    """pix_to_face equal on >= 99.9% of pixels; zbuf, bary, dists within 1e-4 where the face agrees."""
    assert fast.pix_to_face.shape == reference.pix_to_face.shape
    assert fast.bary_coords.shape == reference.bary_coords.shape
    assert fast.pix_to_face.dtype == torch.int64
    same = fast.pix_to_face == reference.pix_to_face
    assert same.float().mean() >= 0.999
    covered = same & (reference.pix_to_face >= 0)
    assert covered.any()
    for name in ("zbuf", "dists"):
        ref, out = getattr(reference, name), getattr(fast, name)
        assert torch.allclose(out[covered], ref[covered], atol=1e-4), name
        assert bool((out[fast.pix_to_face < 0] == -1).all()), name
    assert torch.allclose(fast.bary_coords[covered[..., 0]], reference.bary_coords[covered[..., 0]], atol=1e-4)


@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
@pytest.mark.parametrize("cull_backfaces", [False, True])
@pytest.mark.parametrize("perspective_correct", [None, False])
def test_fragments_match_pytorch3d_two_views(kind, cull_backfaces, perspective_correct):
    meshes = bumpy_sphere().extend(2)
    reference, fast = rasterize_both(meshes, two_view_cameras(kind), cull_backfaces=cull_backfaces,
                                     perspective_correct=perspective_correct)
    assert_fragments_match(reference, fast)


def test_batch_of_different_meshes_with_one_camera_and_non_square_image():
    meshes = Meshes([bumpy_sphere(2).verts_packed(), bumpy_sphere(3, scale=0.5, seed=1).verts_packed() + 0.2],
                    [ico_sphere(2).faces_packed(), ico_sphere(3).faces_packed()])
    cameras = two_view_cameras()[0]
    reference, fast = rasterize_both(meshes, cameras, image_size=(48, 72))
    assert_fragments_match(reference, fast)
    assert int(fast.pix_to_face[1].max()) >= len(ico_sphere(2).faces_packed())  # packed indices of mesh 2


def test_kwargs_override_cameras_and_settings():
    meshes = bumpy_sphere()
    rasterizer = FastMeshRasterizer()
    settings = RasterizationSettings(image_size=40)
    cameras = two_view_cameras()[1]
    fast = rasterizer(meshes, cameras=cameras, raster_settings=settings)
    reference = MeshRasterizer(cameras, settings)(meshes)
    assert_fragments_match(reference, fast)


def render_loss(rasterizer_class, meshes, cameras, perspective_correct):
    """L2 loss of interpolated vertex attributes (colour and position) against a fixed target."""
    settings = RasterizationSettings(image_size=64, perspective_correct=perspective_correct)
    fragments = rasterizer_class(cameras, settings)(meshes)
    attributes = torch.cat([meshes.textures.verts_features_packed(), meshes.verts_packed()], dim=1)
    image = interpolate_face_attributes(fragments.pix_to_face, fragments.bary_coords,
                                        attributes[meshes.faces_packed()])
    target = torch.linspace(0, 1, image.numel()).reshape(image.shape)
    return ((image - target) ** 2).sum() + (fragments.zbuf ** 2).sum() * 1e-3


@pytest.mark.parametrize("perspective_correct", [True, False])
def test_vertex_gradients_match_pytorch3d(perspective_correct):
    gradients = []
    for rasterizer_class in (MeshRasterizer, FastMeshRasterizer):
        meshes = bumpy_sphere().extend(2)
        verts = meshes.verts_padded().clone().requires_grad_(True)
        meshes = meshes.update_padded(verts)
        render_loss(rasterizer_class, meshes, two_view_cameras(), perspective_correct).backward()
        gradients.append(verts.grad.flatten())
    assert gradients[1].abs().sum() > 0
    assert torch.nn.functional.cosine_similarity(gradients[0], gradients[1], dim=0) >= 0.99


def shaded_images(shader_class, rasterizer_class):
    """(2, H, W, 4) images of the bumpy sphere through a MeshRenderer with the given shader, and the
    gradient (2, V, 3) of their squared sum with respect to the vertices."""
    cameras = two_view_cameras()
    settings = RasterizationSettings(image_size=64)
    renderer = MeshRenderer(rasterizer_class(cameras, settings),
                            shader_class(cameras=cameras, lights=PointLights(location=[[0.0, 1.0, 3.0]])))
    meshes = bumpy_sphere().extend(2)
    verts = meshes.verts_padded().clone().requires_grad_(True)
    images = renderer(meshes.update_padded(verts))
    (images[..., :3] ** 2).sum().backward()
    return images.detach(), verts.grad


@pytest.mark.parametrize("shader_class", [SoftPhongShader, HardPhongShader])
def test_mesh_renderer_images_and_gradients_match(shader_class):
    reference, reference_grad = shaded_images(shader_class, MeshRasterizer)
    fast, fast_grad = shaded_images(shader_class, FastMeshRasterizer)
    assert fast.shape == reference.shape
    assert (fast - reference).abs().mean() < 1e-3
    assert (fast - reference).abs().gt(1e-2).float().mean() < 1e-3
    assert torch.nn.functional.cosine_similarity(fast_grad.flatten(), reference_grad.flatten(), dim=0) >= 0.99


def test_mesh_renderer_moves_rasterizer_to_device():
    rasterizer = FastMeshRasterizer(two_view_cameras(), RasterizationSettings(image_size=16))
    assert rasterizer.to("cpu") is rasterizer
    assert rasterizer.cameras.device.type == "cpu"


def assert_empty(fragments):
    """Every pixel empty: pix_to_face, zbuf, bary and dists all -1."""
    for value in (fragments.pix_to_face, fragments.zbuf, fragments.bary_coords, fragments.dists):
        assert bool((value == -1).all())


def test_mesh_outside_the_frame_gives_empty_fragments():
    meshes = bumpy_sphere()
    meshes = meshes.offset_verts(torch.tensor([10.0, 0.0, 0.0]).expand(meshes.num_verts_per_mesh()[0], 3))
    reference, fast = rasterize_both(meshes, two_view_cameras()[0])
    assert_empty(fast)
    assert bool((reference.pix_to_face == -1).all())


def test_mesh_behind_the_camera_gives_empty_fragments():
    cameras = two_view_cameras()[0]
    meshes = bumpy_sphere(scale=0.3)
    behind = cameras.get_camera_center() * 2  # the camera looks at the origin, so this is behind it
    meshes = meshes.offset_verts(behind.expand(meshes.num_verts_per_mesh()[0], 3))
    reference, fast = rasterize_both(meshes, cameras)
    assert_empty(fast)
    assert bool((reference.pix_to_face == -1).all())


def test_zero_area_faces_are_skipped():
    sphere = bumpy_sphere()
    faces = sphere.faces_packed()
    degenerate = torch.stack([faces[:, 0], faces[:, 0], faces[:, 1]], dim=1)  # two equal corners
    meshes = Meshes([sphere.verts_packed()], [torch.cat([degenerate, faces])])
    reference, fast = rasterize_both(meshes, two_view_cameras()[0])
    assert_fragments_match(reference, fast)
    assert int(fast.pix_to_face.min()) == -1
    assert bool((fast.pix_to_face[fast.pix_to_face >= 0] >= len(degenerate)).all())


def test_face_covering_the_frame_with_tiny_chunks(monkeypatch):
    verts = torch.tensor([[-30.0, -30.0, 0.0], [30.0, -30.0, 0.0], [0.0, 40.0, 0.0],
                          [-0.5, -0.5, -0.5], [0.5, -0.5, -0.5], [0.0, 0.5, -0.5]])
    meshes = Meshes([verts], [torch.tensor([[0, 1, 2], [3, 4, 5]])])
    cameras = FoVPerspectiveCameras(R=torch.eye(3)[None], T=torch.tensor([[0.0, 0.0, 3.0]]))
    settings = RasterizationSettings(image_size=48)
    sizes = []
    enumerate_band_pixels = raster._band_pixels
    monkeypatch.setattr(raster, "_band_pixels",
                        lambda bands: sizes.append(int((bands[2] * bands[4]).sum())) or enumerate_band_pixels(bands))
    fast = FastMeshRasterizer(cameras, settings, max_pairs_per_chunk=100)(meshes)
    reference = MeshRasterizer(cameras, settings)(meshes)
    assert_fragments_match(reference, fast)
    assert bool((fast.pix_to_face >= 0).all())
    assert set(fast.pix_to_face.unique().tolist()) == {0, 1}
    assert len(sizes) > 20 and max(sizes) <= 2 * 100


def test_unsupported_settings_raise():
    meshes = bumpy_sphere()
    for settings in (RasterizationSettings(faces_per_pixel=2), RasterizationSettings(blur_radius=1e-4)):
        with pytest.raises(ValueError):
            FastMeshRasterizer(two_view_cameras()[0], settings)(meshes)


def test_make_rasterizer_backends():
    cameras, settings = two_view_cameras(), RasterizationSettings()
    assert type(make_rasterizer(cameras, settings)) is FastMeshRasterizer  # CPU cameras
    assert type(make_rasterizer(None, settings)) is FastMeshRasterizer  # cameras given at call time
    assert type(make_rasterizer(cameras, settings, backend="fast")) is FastMeshRasterizer
    assert type(make_rasterizer(cameras, settings, backend="pytorch3d")) is MeshRasterizer
    with pytest.raises(ValueError):
        make_rasterizer(cameras, settings, backend="opengl")


def test_faces_crossing_the_clip_plane_are_dropped_whole():
    cameras = FoVPerspectiveCameras(R=torch.eye(3)[None], T=torch.tensor([[0.0, 0.0, 3.0]]), znear=1.0)
    crossing = [[-1.0, -1.0, -2.9], [1.0, -1.0, -2.9], [0.0, 1.0, 0.0]]  # view depths 0.1, 0.1 and 3
    in_front = [[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.0, 0.5, 0.0]]
    meshes = Meshes([torch.tensor(crossing + in_front)], [torch.tensor([[0, 1, 2], [3, 4, 5]])])
    fast = FastMeshRasterizer(cameras, RasterizationSettings(image_size=32))(meshes)
    assert set(fast.pix_to_face.unique().tolist()) == {-1, 1}
