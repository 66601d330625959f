"""Where the SQL files and JSON Schemas are: inside the wheel, or in the checkout."""
from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def _resource_dir(name: str) -> Path:
    # A wheel carries sql/ and schemas/ inside the package (see pyproject's
    # force-include); an editable install or a checkout has them at the root.
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name}/ directory next to {_PACKAGE_DIR}")


def sql_dir() -> Path:
    return _resource_dir("sql")


def schemas_dir() -> Path:
    return _resource_dir("schemas")


def schema_path(name: str) -> Path:
    return schemas_dir() / name
