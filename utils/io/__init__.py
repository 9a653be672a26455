"""Files and formats: atomic writing (``files``), images as float tensors in [0, 1] (``images``), 68-point
landmark files in every order found in the wild (``landmarks``), meshes with vertex colours (``mesh``), and the
project's folders and file names, defined once (``layout``: ``ContentFolder``, ``PairFolder``, the defaults)."""
