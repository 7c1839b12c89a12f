"""The public surface and the import direction between packages (checked on the source)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import endoveil

SRC = Path(endoveil.__file__).parent

# package -> endoveil packages/modules it must never import
FORBIDDEN = {
    "media": {"detect", "anonymize", "cli", "cli_train", "gui", "cases", "train", "demo"},
    "detect": {"anonymize", "cli", "cli_train", "gui", "cases", "train", "demo"},
    "anonymize": {"cli", "cli_train", "gui", "cases", "train", "demo"},
}
THIRD_PARTY_FORBIDDEN = {"torch", "torchvision", "timm"}


def test_all_matches_exports() -> None:
    for name in endoveil.__all__:  # the API's names load on first access
        getattr(endoveil, name)
    public = {
        name
        for name, value in vars(endoveil).items()
        if not name.startswith("_") and not isinstance(value, type(sys))
    }
    assert set(endoveil.__all__) == public | {"__version__"}
    for name in endoveil.__all__:
        assert hasattr(endoveil, name)


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by a source file (relative imports resolved)."""
    package = ".".join(("endoveil", *path.relative_to(SRC).parent.parts))
    return _imports_of(path.read_text(encoding="utf-8"), package)


def _imports_of(source: str, package: str) -> set[str]:
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _forbidden(module: str, package: str) -> bool:
    parts = module.split(".")
    if parts[0] in THIRD_PARTY_FORBIDDEN:
        return True
    return parts[0] == "endoveil" and len(parts) > 1 and parts[1] in FORBIDDEN[package]


def _violations(package: str) -> list[str]:
    return [
        f"{path.relative_to(SRC)} imports {module}"
        for path in sorted((SRC / package).rglob("*.py"))
        for module in sorted(_imports(path))
        if _forbidden(module, package)
    ]


@pytest.mark.parametrize("package", FORBIDDEN)
def test_import_direction(package: str) -> None:
    assert (SRC / package).is_dir()
    assert _violations(package) == []


@pytest.mark.parametrize(
    ("source", "package", "forbidden"),
    [
        ("from endoveil.detect.labels import Labels", "media", True),
        ("from ..detect import labels", "media", True),
        ("from . import probe", "media", False),
        ("import endoveil.anonymize.render", "detect", True),
        ("from endoveil.media.probe import probe", "detect", False),
        ("from endoveil import cli", "anonymize", True),
        ("import torch.nn", "anonymize", True),
        ("if TYPE_CHECKING:\n    from endoveil.train import fit", "detect", True),
    ],
)
def test_the_checker_sees_violations(source: str, package: str, forbidden: bool) -> None:
    modules = _imports_of(source, f"endoveil.{package}")
    assert any(_forbidden(m, package) for m in modules) == forbidden, modules


def test_cli_import_does_not_load_torch() -> None:
    code = (
        "import sys, endoveil.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'torchvision'}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"
