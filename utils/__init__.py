"""Library code for the RRPS pipeline, one package per concern (the scripts at the top call into these):

- ``utils.io``: files and formats: atomic writes, images, 68-point landmark files, meshes (.obj/.ply), and the
  on-disk layout (``utils.io.layout``: every folder and file name of the pipeline).
- ``utils.rendering``: step 2: cameras, the rasterizers, rendering K views, vertex projection and visibility.
- ``utils.style``: step 4a: the exemplar turned to each view, STROTSS losses, Laplacian pyramids,
  thin-plate-spline warps, and the joint deformable style transfer of K views.
- ``utils.geometry``: step 4b and 5: triangulation, harmonic fill, reconstruction by differentiable
  rendering, its metrics, Taubin smoothing.
- ``utils.report``: pictures (plots, turntables, the overview) and the static HTML report.
- ``utils.batch``: (content, style) pairs that resume; ``utils.device``: CUDA or CPU; ``utils.errors``:
  one clear line for bad input; ``utils.settings``: the scripts' flags made from the settings dataclasses.
"""
