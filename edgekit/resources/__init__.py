"""Where the data shipped with edgekit lives: target descriptors and firmware templates.

In the repository they are the top-level `targets/` and `firmware_templates/`
folders; in a wheel they are packaged as `edgekit.resources.targets` and
`edgekit.resources.firmware_templates` (see pyproject.toml), so one lookup
serves a source checkout, an editable install and an installed wheel.
"""

from importlib import resources
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _find(package: str, repo_folder: str) -> Path:
    try:
        found = Path(str(resources.files(f"edgekit.resources.{package}")))
        if found.is_dir():
            return found
    except ModuleNotFoundError:
        pass
    return _REPO_ROOT / repo_folder


def targets_dir() -> Path:
    """The folder of target descriptors (`*.yaml`)."""
    return _find("targets", "targets")


def templates_dir() -> Path:
    """The folder of firmware templates, one sub-folder per template."""
    return _find("firmware_templates", "firmware_templates")
