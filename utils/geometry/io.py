"""Files of the reconstruction step: what ``reconstruct_mesh`` returns, written into the pair's folder."""
from utils.io.files import save_json
from utils.io.images import save_image
from utils.io.layout import PairFolder, PathLike
from utils.io.mesh import save_obj
from utils.geometry.reconstruct import Reconstruction
from utils.report.plots import save_loss_curves


def save_reconstruction(folder: PathLike, reconstruction: Reconstruction) -> None:
    """Write a ``Reconstruction`` into ``folder`` (a ``PairFolder`` or its path), each file atomically:
    intermediate/recon_<iter>_<k>.png (the checkpoint renders), intermediate/recon_loss.png (after a refinement),
    then mesh.obj and metrics.json."""
    folder = PairFolder(folder)
    for iteration, renders in reconstruction.checkpoints:
        for k, image in enumerate(renders):
            save_image(folder.recon_checkpoint(iteration, k), image)
    if reconstruction.history:
        save_loss_curves(folder.recon_loss, reconstruction.history, title="mesh refinement")
    save_obj(folder.mesh(), reconstruction.mesh)
    save_json(folder.metrics, reconstruction.metrics)
