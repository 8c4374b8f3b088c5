"""Where the data shipped with edgekit lives: target descriptors and firmware templates.

In the repository they are the top-level `targets/` and `firmware_templates/`
folders; in a wheel they are packaged as `edgekit.resources.targets` and
`edgekit.resources.firmware_templates` (see pyproject.toml), so one lookup
serves a source checkout, an editable install and an installed wheel.
"""

from importlib.util import find_spec
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _find(package: str, repo_folder: str) -> Path:
    # Code imported from a source checkout uses that checkout's data, even when
    # another checkout is installed in editable mode: the data matches the code.
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / repo_folder).is_dir():
        return _REPO_ROOT / repo_folder
    # The data folders have no __init__.py: they import as namespace packages,
    # whose search locations are the folders themselves.
    try:
        spec = find_spec(f"edgekit.resources.{package}")
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    return _REPO_ROOT / repo_folder


def targets_dir() -> Path:
    """The folder of target descriptors (`*.yaml`)."""
    return _find("targets", "targets")


def templates_dir() -> Path:
    """The folder of firmware templates, one sub-folder per template."""
    return _find("firmware_templates", "firmware_templates")
