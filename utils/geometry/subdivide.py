"""Split a mesh's long edges, so that vertex colours can carry detail where the faces are large.

An acquired head's sides are long faces (the 90th-percentile edge there is about 10 px in a 256 px render, against
2 px on the front), so a vertex-colour texture shows horizontal streaks there, whatever the 3D pass paints. Each
round splits every edge longer than the limit at its midpoint, and each face by how many of its edges were split
(one: two faces, two: three, three: four), so the mesh stays conforming (no T-junctions, no cracks when smoothed)
and only where it is coarse. The geometry is unchanged: new vertices lie on the old edges.
"""
from __future__ import annotations

import torch


def _rotated(table: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Each row of ``table`` (F, 3) cycled to begin at column ``start`` (F,)."""
    order = (start[:, None] + torch.arange(3, device=table.device)) % 3
    return table.gather(1, order)


def split_long_edges(verts: torch.Tensor, faces: torch.Tensor, max_length: float,
                     features: torch.Tensor | None = None, rounds: int = 4
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Midpoint-split every edge longer than ``max_length`` for up to ``rounds`` rounds.

    verts: (V, 3); faces: (F, 3) int64; features: (V, C) per-vertex values (colours, ...) or None, interpolated
    at the midpoints. Returns (verts (V', 3), faces (F', 3), features (V', C) or None); the first V vertices are
    the old ones, in order, and every face keeps its winding.
    """
    for _ in range(rounds):
        count = len(faces)
        sides = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])  # (3F, 2): side k of face f at kF+f
        edges, which = torch.unique(sides.sort(1).values, dim=0, return_inverse=True)
        long = (verts[edges[:, 0]] - verts[edges[:, 1]]).norm(dim=1) > max_length
        if not bool(long.any()):
            break
        ends = edges[long]
        midpoint = torch.full((len(edges),), -1, dtype=torch.long, device=faces.device)
        midpoint[long] = len(verts) + torch.arange(len(ends), device=faces.device)
        verts = torch.cat([verts, (verts[ends[:, 0]] + verts[ends[:, 1]]) / 2])
        if features is not None:
            features = torch.cat([features, (features[ends[:, 0]] + features[ends[:, 1]]) / 2])
        middle = midpoint[which].reshape(3, count).T  # (F, 3): the midpoint of side 01, 12, 20, or -1
        split = middle >= 0
        number = split.sum(1)
        # rotate each face so that its split sides come first: one split side -> side 01; two -> sides 01 and 12
        start = torch.where(number == 2, (split.long().argmin(1) + 1) % 3, split.long().argmax(1))
        v, m = _rotated(faces, start), _rotated(middle, start)
        v0, v1, v2, m0, m1, m2 = v[:, 0], v[:, 1], v[:, 2], m[:, 0], m[:, 1], m[:, 2]
        children = [
            torch.stack([v0, v1, v2], 1)[number == 0],
            torch.stack([v0, m0, v2], 1)[number == 1], torch.stack([m0, v1, v2], 1)[number == 1],
            torch.stack([m0, v1, m1], 1)[number == 2], torch.stack([v0, m0, m1], 1)[number == 2],
            torch.stack([v0, m1, v2], 1)[number == 2],
            torch.stack([v0, m0, m2], 1)[number == 3], torch.stack([m0, v1, m1], 1)[number == 3],
            torch.stack([m2, m1, v2], 1)[number == 3], torch.stack([m0, m1, m2], 1)[number == 3],
        ]
        faces = torch.cat(children)
    return verts, faces, features
