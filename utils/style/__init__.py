"""Step 4a, deformable style transfer in image space: the exemplar turned to each view (``style_view``),
STROTSS's losses (``strotss``, the reference, and ``strotss_fast``, the same on the CPU; both provide
``strotss.StrotssLosses``), Laplacian pyramids (``pyramid``), thin-plate-spline warps (``warp``), the joint
optimisation of K views (``stylize``), its GPU and CPU profiles (``profiles``) and its input and output files
(``io``)."""
