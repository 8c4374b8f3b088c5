"""Where the TF.js device program lives, and one clear line for anything missing.

The JS sources and their npm lockfile are the repository's `js/` folder;
`make` (or `npm ci` in that folder) installs @tensorflow/tfjs and
@tensorflow/tfjs-backend-wasm into `js/node_modules`. An installed wheel has
no such folder: EDGEKIT_WEB_DIR names a copy of it (docs/web.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgekit.errors import EdgekitError

ENV_DIR = "EDGEKIT_WEB_DIR"
ENV_CHROMIUM = "EDGEKIT_CHROMIUM"
PACKAGES = ("@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm")
#: files the browser page is made of, besides the packages' bundles
PAGE_FILES = ("page.html", "page.js", "link.js")
#: the packages' browser bundles, as the page asks for them -> path under node_modules
BUNDLES = {
    "tf.min.js": "@tensorflow/tfjs/dist/tf.min.js",
    "tf-backend-wasm.min.js": "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
}
WASM_FILES = ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm")
_REPO_JS = Path(__file__).resolve().parents[2] / "js"


class MissingWebTool(EdgekitError):
    """Node.js, the npm packages, Playwright or Chromium is not installed."""


def web_dir() -> Path:
    """The folder with node-device.js, the page and node_modules (not checked)."""
    return Path(os.environ[ENV_DIR]) if os.environ.get(ENV_DIR) else _REPO_JS


def js_folder() -> Path:
    """web_dir(), once its program and npm packages are known to be there."""
    folder = web_dir()
    if not (folder / "node-device.js").is_file() or not (folder / "package.json").is_file():
        raise MissingWebTool(
            f"the TF.js device program is not at {folder}: set {ENV_DIR} to a copy of edgekit's js/ folder"
        )
    missing = [name for name in PACKAGES if not (folder / "node_modules" / name / "package.json").is_file()]
    if missing:
        raise MissingWebTool(
            f"npm package(s) {', '.join(missing)} missing in {folder}: run `npm ci` there (or `make`)"
        )
    return folder


def wasm_dir(folder: Path) -> Path:
    """The tfjs-backend-wasm .wasm binaries (EDGEKIT_TFJS_WASM_DIR overrides, as in node-device.js)."""
    override = os.environ.get("EDGEKIT_TFJS_WASM_DIR")
    return Path(override) if override else folder / "node_modules" / "@tensorflow" / "tfjs-backend-wasm" / "dist"


def node_binary() -> str:
    """The `node` on PATH, or one line naming what to install."""
    node = shutil.which("node")
    if node is None:
        raise MissingWebTool(
            "Node.js is not installed (no `node` on PATH): install Node.js 18 or newer "
            "(Debian: apt-get install nodejs npm)"
        )
    return node


def chromium_binary() -> str:
    """The system Chromium (EDGEKIT_CHROMIUM overrides), or one line naming what to install."""
    named = os.environ.get(ENV_CHROMIUM)
    if named:
        if not (Path(named).is_file() and os.access(named, os.X_OK)):
            raise MissingWebTool(f"{ENV_CHROMIUM}={named} is not an executable browser")
        return named
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise MissingWebTool(
        "no Chromium found (chromium, chromium-browser or google-chrome on PATH): "
        "install it (Debian: apt-get install chromium) or set EDGEKIT_CHROMIUM"
    )


def playwright_sync():
    """Playwright's sync API, or one line naming the pip package (its own browsers are never used)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise MissingWebTool(
            "the browser runner needs Playwright for Python: pip install 'edgekit[tfjs]' "
            "(it drives the system Chromium; no browser download is needed)"
        ) from None
    return sync_playwright
