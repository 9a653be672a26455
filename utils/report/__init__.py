"""Pictures for people: keypoint overlays and loss curves (``plots``) and the static report ``output/index.html``
(``page``)."""
