"""Screenshots of a speechface .glb as three.js plays it, in headless Chromium.

`tools/gltf_viewer/viewer.html` loads the file with three.js' GLTFLoader (three pinned in tools/gltf_viewer/package.json),
sets an AnimationMixer to a time and renders one frame from a camera given in its URL. This module serves that folder
on a free local port, drives Debian's Chromium with Playwright (WebGL in software, SwiftShader) and screenshots the
canvas. tests/test_gltf_browser.py uses it; run as a script it writes the closed/open pair of a tiny-corpus utterance:

    npm ci --prefix tools/gltf_viewer && python tools/gltf_screenshots.py [docs/results/gltf_threejs_closed_open.png]
"""
import argparse, contextlib, functools, http.server, io, math, tempfile, threading, urllib.parse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIEWER = ROOT / "tools" / "gltf_viewer"
CHROMIUM = Path("/usr/bin/chromium")
WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]   # WebGL 2 in software: no GPU, the same pixels anywhere
CHROME_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", *WEBGL_ARGS]
RESULT = ROOT / "docs" / "results" / "gltf_threejs_closed_open.png"


class ViewerUnavailable(RuntimeError):
    "Something the viewer needs is not installed; the message names the command that installs it."


def missing() -> str | None:
    "Why the three.js viewer cannot run here, with the command that fixes it; None when it can."
    if not (VIEWER / "node_modules" / "three" / "build" / "three.module.js").is_file():
        return "three.js is not installed for the viewer: run `npm ci --prefix tools/gltf_viewer`"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: install Debian's chromium package (`apt-get install chromium`)"
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return "the playwright Python package is missing: `pip install -e '.[dev]'`"
    return None


@contextlib.contextmanager
def serve(files: Path):
    "A local HTTP server on a free port, in a thread: / is the viewer folder, /files/<name> a file of the folder `files`."
    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            p = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
            if p.startswith("/files/"): return str(Path(files) / Path(p).name)        # one folder, no way out of it
            return super().translate_path(path)
        def log_message(self, *args): pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(VIEWER)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def camera_for(neutral, fov: float = 22.0, margin: float = 1.12) -> dict:
    "A camera in front of the face (the procedural head looks along +z, +y up), framing the neutral's bounding box."
    v = np.asarray(neutral, np.float64).reshape(-1, 3)
    lo, hi = v.min(0), v.max(0)
    centre = (lo + hi) / 2
    half = max(hi[0] - lo[0], hi[1] - lo[1]) / 2 * margin                           # the larger of width and height
    dist = half / math.tan(math.radians(fov) / 2) + (hi[2] - centre[2])             # from the front of the box
    return {"eye": (centre + [0, 0, dist]).tolist(), "target": centre.tolist(), "up": [0.0, 1.0, 0.0], "fov": fov}


def project(points, camera: dict, size: int) -> np.ndarray:
    "Pixel (x, y) of 3-D points in a size × size picture from `camera`, as three.js' PerspectiveCamera.lookAt projects them."
    eye, target, up = (np.asarray(camera[k], np.float64) for k in ("eye", "target", "up"))
    z = (eye - target) / np.linalg.norm(eye - target)                              # the camera looks along −z
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    d = np.asarray(points, np.float64).reshape(-1, 3) - eye                        # (N, 3)
    f = 1 / math.tan(math.radians(camera["fov"]) / 2)
    ndc = np.stack([d @ x, d @ y], -1) * f / -(d @ z)[:, None]                     # (N, 2) in [−1, 1]
    return np.stack([(ndc[:, 0] + 1) / 2 * size, (1 - ndc[:, 1]) / 2 * size], -1)


def screenshots(glb, times, camera: dict, size: int = 320, out_dir=None, background: str = "#1c1c22",
                timeout_s: float = 30) -> list[dict]:
    "One three.js frame of `glb` per time: [{'t', 'image' (size, size, 3) uint8, 'three': what three.js made of the file, 'png'}]."
    why = missing()
    if why: raise ViewerUnavailable(why)
    from PIL import Image
    from playwright.sync_api import sync_playwright
    glb = Path(glb)
    if not glb.is_file(): raise FileNotFoundError(f"{glb}: no such glTF file")
    vec = lambda k: ",".join(f"{c:.9g}" for c in camera[k])
    shots, log = [], []
    with serve(glb.parent) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROME_ARGS)
        try:
            page = browser.new_page(viewport={"width": size, "height": size})
            page.on("console", lambda m: log.append(f"console.{m.type}: {m.text}"))
            page.on("pageerror", lambda e: log.append(f"page error: {e}"))
            for t in times:
                query = urllib.parse.urlencode({"glb": f"/files/{glb.name}", "t": f"{float(t):.9g}", "eye": vec("eye"),
                                                "target": vec("target"), "up": vec("up"), "fov": camera["fov"], "size": size,
                                                "background": background})
                page.goto(f"{url}/viewer.html?{query}")
                try: page.wait_for_function("document.title !== 'loading'", timeout=timeout_s * 1000)
                except Exception as e:
                    raise RuntimeError(f"the viewer did not finish {glb.name} at t={t} within {timeout_s} s ({type(e).__name__}); "
                                       f"browser log:\n" + "\n".join(log[-20:])) from None
                if page.title() == "error":
                    raise RuntimeError(f"three.js could not show {glb.name} at t={t}: {page.evaluate('window.error')}\n"
                                       + "\n".join(log[-20:]))
                png = page.locator("canvas").screenshot()
                shot = {"t": float(t), "image": np.asarray(Image.open(io.BytesIO(png)).convert("RGB")),
                        "three": page.evaluate("window.result"), "png": None}
                if out_dir is not None:
                    shot["png"] = Path(out_dir) / f"{glb.stem}_t{float(t):.4f}.png"
                    shot["png"].parent.mkdir(parents=True, exist_ok=True)
                    shot["png"].write_bytes(png)
                shots.append(shot)
        finally: browser.close()
    return shots


def closed_and_open(seq, regions, closed_within: float = 1e-4) -> tuple[int, int]:
    "(closed, open) frames of a (T, V, 3) sequence: the widest inner-lip distance, and the closed frame nearest to it in time."
    from speechface.data.mesh import inner_lip_distance
    d = inner_lip_distance(seq, regions["inner_lip_upper"], regions["inner_lip_lower"])   # (T,) mean inner-lip distance
    wide = int(d.argmax())
    closed = np.flatnonzero(d <= d.min() + closed_within)                 # lips shut (within 0.1 mm of the tightest)
    return int(closed[np.abs(closed - wide).argmin()]), wide              # nearest in time: the least head motion between


def mouth_box(points, camera: dict, size: int, pad: int = 6) -> tuple[slice, slice]:
    "(rows, columns) of the picture around the projected points (the lips), `pad` pixels wider on each side."
    xy = project(points, camera, size)
    x0, y0 = np.floor(xy.min(0)).astype(int) - pad
    x1, y1 = np.ceil(xy.max(0)).astype(int) + pad
    return slice(max(y0, 0), min(y1, size)), slice(max(x0, 0), min(x1, size))


def utterance(root: Path, stem: str = "synth_f1_sentence01") -> dict:
    "A tiny-corpus utterance: neutral (the speaker's template), faces, regions, the (T, V, 3) motion, fps and its wav."
    import json
    from speechface.data.mesh import load_regions, load_templates
    meta = json.loads((root / "metadata.json").read_text())
    seq = np.load(root / "vertices_npy" / f"{stem}.npy")
    return {"stem": stem, "neutral": load_templates(root / "templates.pkl")[stem.rsplit("_", 1)[0]].reshape(-1, 3),
            "faces": np.load(root / "faces.npy"), "regions": load_regions(root / "regions.pkl"),
            "motion": seq.reshape(len(seq), -1, 3), "fps": meta["fps"], "wav": root / "wav" / f"{stem}.wav"}


def composite(images: list, captions: list[str]) -> np.ndarray:
    "Pictures side by side under one caption strip."
    from speechface.viz.video import caption_strip
    row = np.concatenate(images, 1)
    return np.concatenate([caption_strip(captions, images[0].shape[1], background=(1.0, 1.0, 1.0)), row], 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", nargs="?", default=str(RESULT), help="PNG to write (default: %(default)s)")
    p.add_argument("--size", type=int, default=320, help="pixels per picture")
    a = p.parse_args()
    from PIL import Image
    from speechface.data.synth import cached_corpus
    from speechface.export.gltf import write_gltf
    u = utterance(cached_corpus("tiny"))
    closed, wide = closed_and_open(u["motion"], u["regions"])
    with tempfile.TemporaryDirectory() as tmp:
        glb = write_gltf(Path(tmp) / f"{u['stem']}.glb", u["neutral"], u["faces"], u["fps"], motion=u["motion"])["path"]
        cam = camera_for(u["neutral"])
        shots = screenshots(glb, [closed / u["fps"], wide / u["fps"]], cam, a.size)
    img = composite([s["image"] for s in shots], [f"three.js t={s['t']:.2f} s ({k})" for s, k in zip(shots, ("closed", "open"))])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"{out}: frames {closed} (closed) and {wide} (open) of {u['stem']}, {out.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__": main()
