"""Step 4a, deformable style transfer in image space: the exemplar turned to each view (``style_view``),
STROTSS's losses (``strotss``), Laplacian pyramids (``pyramid``), thin-plate-spline warps (``warp``), the
joint optimisation of K views (``stylize``) and its input and output files (``io``)."""
