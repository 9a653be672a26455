"""Steps 4b and 5, geometry: DLT triangulation (``triangulate``), harmonic fill over a mesh (``fill``),
reconstruction by differentiable rendering (``reconstruct``), its quality figures (``metrics``) and Taubin
smoothing (``smoothing``)."""
