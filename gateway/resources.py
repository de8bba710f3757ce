"""Where the gateway finds its contracts (``schemas/``) and default configuration.

From a checkout (or an editable install) they are the top-level folders beside
the ``gateway`` package; an installed wheel carries them as ``gateway/_data``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder ``schemas`` or ``config``, wherever this installation keeps it."""
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {name!r} folder is missing from this installation of the gateway")
