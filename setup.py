"""Packaging beyond what pyproject.toml can say: the data folders that ship inside the wheel.

`targets/` and `firmware_templates/` live at the repository's top level and
install as `edgekit.resources.targets` and `edgekit.resources.firmware_templates`
(mapped in pyproject.toml). They are plain folders, not packages, so
`find_packages` cannot see them: they are named here.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["edgekit", "edgekit.*"])
    + ["edgekit.resources.targets", "edgekit.resources.firmware_templates"],
)
