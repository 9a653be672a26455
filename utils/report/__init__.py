"""Pictures for people: keypoint overlays and loss curves (``plots``), the report's turntables, GIFs, landmark
overlays and overview picture (``pictures``), the static report ``output/index.html`` (``page``) with its 3D
viewer (``glb``: the meshes as glTF binary; ``viewer.js``; ``vendor/``). The landmark editor is step 3's, in
``utils/landmarks``."""
