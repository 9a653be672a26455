"""Step 2, rendering: cameras and their world-to-pixel matrices (``cameras``), the fast CPU rasterizer and
PyTorch3D's (``raster``), K unlit or lit views of a mesh (``render``), and the content folder a mesh becomes:
views, cameras.json, vertex projections and visibility (``content``)."""
