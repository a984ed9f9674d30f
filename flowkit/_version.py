"""``flowkit.__version__``: the installed distribution's version, from its metadata.

One source of truth: the version in ``pyproject.toml``, as installed. A source
tree imported without being installed (no metadata) reports ``0+unknown``
rather than failing to import.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("flowkit")
except PackageNotFoundError:  # an uninstalled checkout
    __version__ = "0+unknown"
