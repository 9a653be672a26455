"""Steps 4b and 5, geometry: DLT triangulation (``triangulate``), harmonic fill over a mesh (``fill``),
reconstruction by differentiable rendering (``reconstruct``) and its files (``io``), its quality figures
(``metrics``) and Taubin smoothing (``smoothing``)."""
