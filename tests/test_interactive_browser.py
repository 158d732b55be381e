"""The widget demo (nbs/95_interactive.ipynb) in a real browser: JupyterLab + Debian's Chromium driven by Playwright.

A tiny corpus and a one-epoch model are made in a fixture; JupyterLab serves a copy of the notebook with the
demo's environment variables pointing at them; Chromium runs all cells, picks another sentence, presses Animate and
checks that a new, playable video and a new frame image appear. The screenshot goes to tests/artifacts/demo.png.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
TINY = ["model.feature_dim=32", "model.audio.mel_dim=32", "trainer.lr=1e-3", "trainer.batch_size=4"]
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAB_SETTINGS = {  # JupyterLab user settings for a quiet, deterministic session
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def need_chromium():
    "Debian's Chromium, installed with apt-get when missing and possible; skip with the reason otherwise."
    if CHROMIUM.exists(): return
    why = "not root" if os.geteuid() != 0 else "no apt-get" if not shutil.which("apt-get") else ""
    if not why:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        r = subprocess.run("apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium", shell=True,
                           env=env, capture_output=True, text=True, timeout=600)
        why = f"apt-get install chromium failed: {r.stderr[-500:]}" if r.returncode else ""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and could not be installed ({why or 'unknown reason'}); "
                    "install Debian's chromium package to run the browser test of the demo")


def speechface(*args):
    r = subprocess.run(["speechface", *map(str, args)], capture_output=True, text=True)
    if r.returncode: raise AssertionError(f"speechface {args}: rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_corpus):
    "A tiny corpus and a one-epoch SFT checkpoint: (corpus, checkpoints folder)."
    tmp = tmp_path_factory.mktemp("demo")
    (tmp / "tiny").symlink_to(tiny_corpus)                       # the shared corpus (tests/conftest.py)
    speechface("train", f"dataset.root={tmp / 'tiny'}", f"out_dir={tmp / 'ck'}", "run=sft_tiny", *TINY,
               "trainer.epochs=1", "--quiet")
    assert (tmp / "ck" / "sft_tiny" / "best.pt").is_file()
    from speechface.data.dyadic import cached_dyadic_corpus                # the listener-reaction demo: a tiny FSQ model
    speechface("train", "trainer=reaction_tiny", "dataset=dyadic", f"dataset.root={cached_dyadic_corpus('tiny')}",
               f"out_dir={tmp / 'ck'}", "run=fsq_tiny", "trainer.epochs=1", "trainer.tokenizer.epochs=2", "--quiet")
    assert (tmp / "ck" / "fsq_tiny" / "best.pt").is_file()
    return tmp / "tiny", tmp / "ck"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(workspace: Path, tmp: Path, env: dict) -> tuple[subprocess.Popen, str]:
    "JupyterLab on 127.0.0.1 without token or password, its settings and runtime files under `tmp`."
    settings = tmp / "lab-settings"
    for name, value in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))
    port = free_port()
    env = {**env, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # the kernel is this venv's
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={workspace}", "--IdentityProvider.token=",
           "--PasswordIdentityProvider.hashed_password=", "--PasswordIdentityProvider.password_required=False"]
    log = open(tmp / "jupyterlab.log", "wb")
    proc = subprocess.Popen(cmd, cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited with {proc.returncode}:\n{(tmp / 'jupyterlab.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                if r.status == 200: return proc, url
        except OSError: time.sleep(0.5)
    stop_lab(proc)
    raise AssertionError(f"JupyterLab did not answer on {url} within 60 s:\n{(tmp / 'jupyterlab.log').read_text()[-3000:]}")


def stop_lab(proc: subprocess.Popen):
    "SIGTERM lets the server shut its kernels down; whatever of ours is left after 20 s is killed by pid."
    try:
        import psutil
        family = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    except Exception: family = [proc.pid]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try: proc.wait(20)
        except subprocess.TimeoutExpired: pass
    for pid in family:
        try: os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError): pass
    proc.wait(10)


ALL_CELLS_RUN = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
NEW_VIDEO = """(old) => {
  const v = document.querySelector('video.sf-video');
  const s = document.querySelector('.sf-status');
  return v && v.src && v.src !== old && s && s.textContent.includes('✓');
}"""
PLAYABLE = """() => { const v = document.querySelector('video.sf-video');
  return v && v.readyState >= 2 && v.duration > 0 && v.videoWidth > 0; }"""


def user_head(path):
    "A head as a user's file holds it: the procedural head at 600 vertices, shuffled, in centimetres, Z up."
    import trimesh
    from speechface.data.head import build_head
    h = build_head(600)
    perm = np.random.default_rng(1).permutation(h.n_vertices)
    v = h.vertices[perm] @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T * 100
    trimesh.Trimesh(v, np.argsort(perm)[h.faces], process=False).export(path)
    return path


def test_demo_animates_in_jupyterlab(tiny_model, tmp_path):
    need_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright` "
                                   "(the Python package only; it drives Debian's /usr/bin/chromium)")
    t0 = time.time()
    data, ckpts = tiny_model
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    nb = json.loads((ROOT / "nbs" / "95_interactive.ipynb").read_text())
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    (workspace / "95_interactive.ipynb").write_text(json.dumps(nb))
    from speechface.data.dyadic import cached_dyadic_corpus
    env = {**os.environ, "SPEECHFACE_INTERACTIVE_DATA": str(data), "SPEECHFACE_INTERACTIVE_CKPTS": str(ckpts),
           "SPEECHFACE_INTERACTIVE_OUT": str(tmp_path / "out"), "SPEECHFACE_INTERACTIVE_DYADIC": str(cached_dyadic_corpus("tiny"))}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc, url = start_lab(workspace, tmp_path, env)
    try:
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM),
                                                       headless=True, args=CHROME_ARGS, viewport={"width": 1400, "height": 1100})
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            try:
                page.set_default_timeout(60_000)
                page.goto(f"{url}/lab/tree/95_interactive.ipynb", wait_until="domcontentloaded")
                page.wait_for_selector(".jp-Notebook .jp-CodeCell")
                page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"ipykernel.*Idle")).first.wait_for()  # kernel up
                # Run → Run All Cells, from the menu bar as a user would
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
                page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
                page.wait_for_function(ALL_CELLS_RUN, timeout=100_000, polling=500)
                errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", has_text="Traceback")
                assert errors.count() == 0, errors.first.inner_text()[-2000:]
                status = page.locator(".sf-status")
                assert "✓" in status.inner_text(), f"the notebook's own run did not succeed: {status.inner_text()}"
                video = page.locator("video.sf-video")
                old_src, old_frame = video.get_attribute("src"), page.locator("img.sf-frame-image").get_attribute("src")
                # another sentence, then Animate
                select = page.locator(".sf-sentence select")
                options = select.evaluate("s => [...s.options].map(o => o.textContent.replace(/\\u00a0/g, ' '))")  # labels use nbsp
                assert len(options) >= 2, options
                current = select.evaluate("s => s.selectedIndex")
                chosen = options[(current + 1) % len(options)]
                select.select_option(index=(current + 1) % len(options))
                page.locator("button.sf-animate").click()
                page.wait_for_function(NEW_VIDEO, arg=old_src, timeout=60_000, polling=250)
                stem = chosen.split(" · ")[1]
                assert stem in status.inner_text(), (stem, status.inner_text())
                page.wait_for_function(PLAYABLE, timeout=20_000)   # Chromium decodes the H.264/AAC MP4
                assert page.locator("img.sf-frame-image").get_attribute("src") != old_frame
                assert page.locator("img.sf-lips").is_visible() and page.locator("img.sf-heatmap").is_visible()
                # the frame slider: a click in the middle of its track shows a later frame
                info, frame_src = page.locator(".sf-frame-info"), page.locator("img.sf-frame-image").get_attribute("src")
                assert info.inner_text().startswith("frame 1/"), info.inner_text()
                page.locator(".sf-frame .noUi-target").click()
                page.wait_for_function("(old) => document.querySelector('img.sf-frame-image').src !== old", arg=frame_src, timeout=10_000)
                assert not info.inner_text().startswith("frame 1/"), info.inner_text()
                # it plays (muted: headless Chromium has no sound card and no user gesture)
                page.evaluate("() => { const v = document.querySelector('video.sf-video'); v.muted = true; return v.play(); }")
                page.wait_for_function("() => document.querySelector('video.sf-video').currentTime > 0.5", timeout=20_000)
                page.evaluate("() => document.querySelector('video.sf-video').pause()")
                page.locator(".sf-demo").scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "demo.png"))
                page.locator(".sf-demo").screenshot(path=str(ARTIFACTS / "demo_widget.png"))
                # your own head: upload an .obj through the widget's file chooser, as a user would, then Animate
                with page.expect_file_chooser() as chooser:
                    page.locator(".sf-head-upload").click()
                chooser.value.set_files(str(user_head(tmp_path / "user_head.obj")))
                page.wait_for_function("() => document.querySelector('.sf-use-head input').checked", timeout=10_000)
                old_src = video.get_attribute("src")
                page.locator("button.sf-animate").click()
                page.wait_for_function(NEW_VIDEO, arg=old_src, timeout=60_000, polling=250)
                assert "user_head.obj" in status.inner_text(), status.inner_text()
                page.wait_for_function(PLAYABLE, timeout=20_000)
                assert page.evaluate("() => document.querySelector('video.sf-video').videoWidth") == 2 * 384   # model's face | head
                page.locator(".sf-demo").screenshot(path=str(ARTIFACTS / "demo_head.png"))
                # the listener-reaction demo: the notebook's own run, then another speaker sample and React
                rstatus = page.locator(".sf-react-status")
                assert "✓" in rstatus.inner_text(), f"the reaction demo's own run did not succeed: {rstatus.inner_text()}"
                assert page.locator(".sf-react-model select").evaluate("s => s.options[s.selectedIndex].textContent").startswith("FSQ")
                old_react = page.locator("video.sf-react-video").get_attribute("src")
                rselect = page.locator(".sf-react-sample select")
                rselect.select_option(index=(rselect.evaluate("s => s.selectedIndex") + 1) % rselect.evaluate("s => s.options.length"))
                page.locator("button.sf-react").click()
                page.wait_for_function("""(old) => { const v = document.querySelector('video.sf-react-video');
                    const s = document.querySelector('.sf-react-status');
                    return v && v.src && v.src !== old && s && s.textContent.includes('✓'); }""", arg=old_react, timeout=90_000,
                                       polling=250)
                page.wait_for_function("""() => { const v = document.querySelector('video.sf-react-video');
                    return v && v.readyState >= 2 && v.duration > 0 && v.videoWidth > 0; }""", timeout=20_000)
                assert page.locator("img.sf-react-plot").is_visible()
                page.locator(".sf-react-demo").screenshot(path=str(ARTIFACTS / "react_widget.png"))
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "demo_failure.png"))   # what the browser showed when it failed
                prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
                print(f"cell prompts at failure: {prompts}\nstatus: {page.locator('.sf-status').all_inner_texts()}")
                raise
            finally: ctx.close()
    finally:
        stop_lab(proc)
    print(f"the browser part took {time.time() - t0:.0f} s")
