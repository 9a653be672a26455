"""Model acquisition (step 1): a portrait photo becomes a closed, coloured 3D head mesh, offline.

* ``photo``: reading and checking the photo (grayscale, RGBA, 16-bit, tiny or huge images);
* ``face``: MediaPipe's face mesh (478 points with depth) and person segmentation, dlib's 68 landmarks;
* ``head``: the head surface: a dense front sheet shaped by the face and the inflated silhouette,
  a back sheet behind it, both sharing the silhouette's outline so the mesh is closed;
* ``colors``: vertex colours projected from the photo, the unseen ones filled by mirroring and
  harmonic interpolation;
* ``pipeline``: the settings and ``acquire_head`` / ``acquire_file``, which tie them together.
"""
