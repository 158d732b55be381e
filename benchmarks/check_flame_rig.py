"""Does the render-time face (`speechface.viz.face`) work on a FLAME-topology mesh? Checks it on a real FLAME template.

Usage: python benchmarks/check_flame_rig.py TEMPLATE [--masks FLAME_masks.pkl] [--size 384] [--out DIR]
TEMPLATE is a FLAME-topology neutral head (5023 vertices): an .obj (e.g. DECA's `data/head_template.obj`) or a
VOCASET `templates.pkl` (its first subject). FLAME's files are licensed and not shipped here: point the script at
yours. With `--masks` (FLAME's `FLAME_masks.pkl`) the rig uses its `lips` region, as for VOCASET training data;
without, the lips are taken as the vertices within 12 mm of the mouth opening (the boundary loop that lies most to
the front), which is only good enough for this check.

The check opens the jaw without the FLAME model (its blendshapes are licensed too): the vertices are rotated about a
horizontal axis 6 cm behind the mouth by angles from 0 to 10 degrees and back (40 frames), each weighted by how much
nearer (over the mesh's edges) it lies to the lower half of the mouth opening than to the upper half. It prints how the rig found the mouth
(FLAME has no inner-lip landmarks: the loop of the mouth opening, split at its corners), the correlation of the
close-up's dark inner-mouth area with the rig's own lip gap, the dark area of a shut and an open frame, and the
render time per frame; with --out it writes the shut and open close-ups and the full-face frame as PNG.
"""
import argparse, time
from pathlib import Path

import numpy as np


def load_template(path: Path) -> tuple[np.ndarray, np.ndarray]:
    "(V, 3) vertices and (F, 3) triangles of an .obj, or the first template of a VOCASET templates.pkl with FLAME faces."
    if path.suffix == ".obj":                                             # read by hand: loaders split vertices at UV seams
        lines = path.read_text().splitlines()
        v = np.array([l.split()[1:4] for l in lines if l.startswith("v ")], np.float64)
        f = np.array([[int(t.split("/")[0]) - 1 for t in l.split()[1:4]] for l in lines if l.startswith("f ")], np.int64)
        return v, f
    raise SystemExit(f"{path}: give an .obj with FLAME topology (a templates.pkl has no triangles; export one subject "
                     f"with the FLAME faces to .obj first)")


def derived_lips(v: np.ndarray, faces: np.ndarray, height: float = 0.011) -> np.ndarray:
    """A stand-in for FLAME's lips mask: the vertices in front of the mouth opening (the boundary loop that lies most
    to the front), between its corners and within `height` above or below its middle."""
    from speechface.viz.face import boundary_loops
    loops = [l for l in boundary_loops(faces) if len(l) >= 4]
    m = v[max(loops, key=lambda l: v[l, 2].mean())]                      # FLAME: +z is the front, +y up
    inside = (np.abs(v[:, 0]) < 0.95 * np.abs(m[:, 0]).max()) & (np.abs(v[:, 1] - m[:, 1].mean()) < height)
    return np.flatnonzero(inside & (v[:, 2] > m[:, 2].mean()))


def jaw_weights(v: np.ndarray, faces: np.ndarray, upper: np.ndarray, lower: np.ndarray, reach: float = 0.02) -> np.ndarray:
    """(V,) how much each vertex follows the jaw: 1 near the lower lip, 0 near the upper lip, by graph distance over the
    mesh's edges to the two halves of the mouth opening (the lips meet only at the corners), and 0 above the mouth."""
    import scipy.sparse, scipy.sparse.csgraph
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    g = scipy.sparse.coo_matrix((np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1), (e[:, 0], e[:, 1])), (len(v), len(v)))
    d_up, d_lo = (scipy.sparse.csgraph.dijkstra(g.tocsr(), directed=False, indices=ix, min_only=True) for ix in (upper, lower))
    w = np.clip(0.5 + np.nan_to_num(d_up - d_lo, nan=0.0) / (2 * reach), 0, 1)   # other parts (eyeballs): unreachable
    return w * (v[:, 1] < v[upper, 1].max()) * np.isfinite(d_lo)

def open_jaw(v: np.ndarray, w: np.ndarray, pivot: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    "(T, V, 3): the vertices rotated about a horizontal axis through `pivot` by each angle, each by its weight `w`."
    out = []
    for a in np.deg2rad(angles_deg):
        c, s = np.cos(a), np.sin(a)
        R = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])                  # rotation about x: the chin goes down and back
        out.append(v + w[:, None] * ((v - pivot) @ R.T + pivot - v))
    return np.stack(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("template", type=Path)
    p.add_argument("--masks", type=Path)
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    from speechface.data.mesh import load_regions
    from speechface.viz.face import FaceRig, FaceViews, dark_fraction
    v, faces = load_template(a.template)
    regions = load_regions(a.masks, len(v)) if a.masks else {"lips": derived_lips(v, faces)}
    t0 = time.perf_counter()
    rig = FaceRig(v, faces, regions)
    t_rig = time.perf_counter() - t0
    up, lo = rig.lip_pairs
    angles = np.concatenate([np.linspace(0, 10, 20), np.linspace(10, 0, 20)])
    w = jaw_weights(v, faces, up, lo)
    seq = open_jaw(v, w, v[rig.loop].mean(0) + np.array([0.0, 0.0, -0.06]), angles)   # axis 6 cm behind the mouth
    gap = np.linalg.norm(seq[:, up] - seq[:, lo], axis=-1).mean(1)       # (T,) the rig's own inner-lip gap, metres
    views = FaceViews(rig, [seq.reshape(len(seq), -1)], size=a.size)
    views.render(seq[0])                                                   # warm-up: GL context
    t0 = time.perf_counter()
    shots = [views.render(f) for f in seq]
    t_render = (time.perf_counter() - t0) / len(seq)
    dark = np.array([dark_fraction(close) for _, close in shots])
    r = float(np.corrcoef(dark, gap)[0, 1])
    print(f"template {a.template.name}: V={len(v)} F={len(faces)}; lips {len(regions['lips'])} vertices "
          f"({'FLAME_masks.pkl' if a.masks else 'derived from the mouth opening'})")
    print(f"rig: mouth loop {len(rig.loop)} vertices, {len(up)} upper/lower pairs, mouth half width "
          f"{rig.mouth_half * 1000:.1f} mm, eyes drawn {rig.eyes or 'none (FLAME has eyeballs or no eye regions)'}, "
          f"subdivision {'sparse matrix' if rig.S is not None else 'per frame'}; built in {t_rig:.2f} s")
    print(f"lip gap {gap.min() * 1000:.1f}-{gap.max() * 1000:.1f} mm; dark close-up area shut {dark[0]:.4f}, "
          f"open {dark.max():.4f}; r(dark area, lip gap) = {r:.3f} over {len(seq)} frames")
    print(f"render (full + close-up, {a.size} px): {1000 * t_render:.0f} ms per frame")
    if a.out:
        from PIL import Image
        a.out.mkdir(parents=True, exist_ok=True)
        i_open = int(np.argmax(gap))
        Image.fromarray(shots[0][1]).save(a.out / "flame_closeup_shut.png")
        Image.fromarray(shots[i_open][1]).save(a.out / "flame_closeup_open.png")
        Image.fromarray(shots[i_open][0]).save(a.out / "flame_full_open.png")
    views.close_all()


if __name__ == "__main__": main()
