"""The package's folders are its layers (docs/architecture.md): each module imports only from its own layer and
the layers below it, and cnosdb-lite never imports the server."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnosdb_jaeger_storage"
# Lowest first. The shared modules (errors, metrics, proto and the generated stubs) sit below them all.
LAYERS = ["shared", "model", "cnosdb", "storage", "transport", "wiring"]
SHARED = {"errors", "metrics", "proto", "_gen"}


def layer_of(parts: list[str]) -> str:
    head = parts[0]
    if head in SHARED:
        return "shared"
    if head in ("model", "cnosdb", "storage", "transport"):
        return head
    return "wiring"  # cli, config, server


def imported_modules(path: Path) -> list[list[str]]:
    """Modules of this package that `path` imports, as path parts below the package."""
    own = path.relative_to(PACKAGE).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(own[:len(own) - node.level])
                found.append(base + (node.module.split(".") if node.module else [a.name for a in node.names][:1]))
            elif node.module and node.module.startswith("cnosdb_jaeger_storage."):
                found.append(node.module.split(".")[1:])
        elif isinstance(node, ast.Import):
            found.extend(a.name.split(".")[1:] for a in node.names if a.name.startswith("cnosdb_jaeger_storage."))
    return [parts for parts in found if parts]


def test_every_module_imports_only_its_own_layer_and_those_below() -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if "_gen" not in p.parts]
    assert len(modules) > 30
    upward = []
    for path in modules:
        own = layer_of(list(path.relative_to(PACKAGE).parts))
        for parts in imported_modules(path):
            if LAYERS.index(layer_of(parts)) > LAYERS.index(own):
                upward.append(f"{path.relative_to(ROOT)} imports {'.'.join(parts)}")
    assert upward == []


def test_cnosdb_lite_never_imports_the_server() -> None:
    offenders = []
    for path in (ROOT / "cnosdb_lite").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("cnosdb_jaeger_storage")]
    assert offenders == []
