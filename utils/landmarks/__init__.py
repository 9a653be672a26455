"""Step 3's tools for people: the landmark editor that ``correspondences.py --edit`` serves (``editor``,
``editor.html``), to drag wrong landmarks of style images and content views into place."""
