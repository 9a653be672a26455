"""Make the example data from public-domain photos that ship inside packages (nothing is downloaded).

* models/hopper.obj: a closed coloured head made from matplotlib's Grace Hopper photo by the
  acquisition code (acquire.py's library, utils/acquisition); models/hopper.landmarks.txt: its 68
  landmark vertices in dlib's order.
* style/astronaut_<style>.png + .txt: scikit-image's astronaut photo cropped to the face,
  caricatured by a thin-plate-spline warp of its landmarks and stylized with OpenCV filters;
  the .txt holds the 68 landmarks of the result, "x y" per line.

Run from anywhere: python example/make_example.py  (deterministic, about ten seconds on a CPU).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.errors import cli_entry  # noqa: E402
from example_data import make_style, require_landmarks, sample_photo  # noqa: E402
from utils.acquisition.pipeline import AcquireSettings, acquire_head  # noqa: E402
from utils.io.files import save_text  # noqa: E402
from utils.io.images import save_image  # noqa: E402
from utils.io.mesh import save_obj  # noqa: E402

EXAMPLE_DIR = Path(__file__).resolve().parent
MESH_VERTICES = 12000  # about, on the head's front sheet (the closed head has nearly twice as many)
MESH_HEIGHT = 2.0  # units, y up, the face toward +z
STYLE_SIZE = 256  # pixels a side
STYLES = {  # name: (filter, caricature: scale factors of exaggerate_landmarks, or None)
    "astronaut_cartoon": ("cartoon", None),
    "astronaut_caricature": ("painterly", {"eyes": 1.3, "chin": 0.2, "face_width": 0.9, "nose": 1.1}),
    "astronaut_popart": ("pop_art", {"eyes": 0.85, "chin": -0.1, "face_width": 1.12, "nose": 1.3, "mouth": 1.25}),
}


def points_text(points, fmt):
    """One line per row of a (N, D) array, formatted with ``fmt``."""
    return "".join(fmt % tuple(row) + "\n" for row in points)


def example_settings(vertices=MESH_VERTICES):
    """The acquisition settings of the example mesh."""
    return AcquireSettings(vertices=vertices, height=MESH_HEIGHT)


@cli_entry
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=EXAMPLE_DIR, help="folder receiving models/ and style/")
    parser.add_argument("--vertices", type=int, default=MESH_VERTICES, help="approximate mesh vertex count")
    parser.add_argument("--style-size", type=int, default=STYLE_SIZE, help="style image side in pixels")
    args = parser.parse_args()
    if args.vertices < 1000 or args.style_size < 64:
        parser.error("--vertices must be at least 1000 and --style-size at least 64")

    hopper = acquire_head(sample_photo("hopper"), "grace_hopper.jpg", example_settings(args.vertices))
    mesh, landmark_vertices = hopper.mesh, hopper.landmark_vertices
    save_obj(args.out / "models" / "hopper.obj", mesh)
    save_text(args.out / "models" / "hopper.landmarks.txt", points_text(landmark_vertices[:, None], "%d"))
    print(f"models/hopper.obj: {len(mesh.verts)} vertices, {len(mesh.faces)} faces")

    astronaut = sample_photo("astronaut")
    astronaut_landmarks = require_landmarks(astronaut, "skimage astronaut")
    for name, (filter_name, exaggeration) in STYLES.items():
        image, points = make_style(astronaut, astronaut_landmarks, filter_name, exaggeration, args.style_size)
        save_image(args.out / "style" / f"{name}.png", image / 255.0)
        save_text(args.out / "style" / f"{name}.txt", points_text(points, "%.2f %.2f"))
        print(f"style/{name}.png")


if __name__ == "__main__":
    main()
