"""The package's shape, read from its source (issue 24): dependencies flow one way, and no
module grows past about 400 lines. docs/layout.md draws the same picture."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "burstkpn"

# Lowest first; a module may import from its own layer and the ones before it, never after.
# The most specific prefix wins ("burstkpn.data" covers every module below it).
LAYERS: list[tuple[str, ...]] = [
    ("burstkpn.errors", "burstkpn.runtime", "burstkpn.profiling"),
    ("burstkpn.data", "burstkpn.ops", "burstkpn.metrics", "burstkpn.losses"),
    ("burstkpn.models",),
    ("burstkpn.inference",),
    ("burstkpn.denoising", "burstkpn.restoration", "burstkpn.export", "burstkpn.viz"),
    ("burstkpn.evaluation",),
    ("burstkpn.train", "burstkpn.bench"),
    ("burstkpn.jobs",),
    ("burstkpn.cli",),
]
# the package root is a light facade: anyone may take its version string or InputError
ROOT_NAMES = {"__version__", "InputError"}
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int | None:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def imports(module: str, text: str, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every burstkpn import, at any depth of the file."""
    here = module.split(".")
    package = here if is_package else here[:-1]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target, [a.name for a in node.names]))
    return [f for f in found if f[1] == "burstkpn" or f[1].startswith("burstkpn.")]


def upward_imports(module: str, text: str, is_package: bool = False) -> list[str]:
    rank = layer(module)
    wrong = []
    for line, target, names in imports(module, text, is_package):
        if target == "burstkpn":
            # `from burstkpn import models` names a subpackage: judge it as that import
            targets = [f"burstkpn.{n}" for n in names if n not in ROOT_NAMES]
        else:
            targets = [target]
        for t in targets:
            r = layer(t)
            if r is not None and r > rank:
                wrong.append(f"{module}:{line} imports {t} (layer {r} > {rank})")
    return wrong


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in SOURCES if p != PACKAGE / "__init__.py"]
    missing = [m for m in missing if layer(m) is None]
    assert not missing, f"add these to LAYERS (and docs/layout.md): {missing}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_flow_one_way(path):
    module = module_name(path)
    if module == "burstkpn":  # the facade imports its API lazily, from above everything
        return
    wrong = upward_imports(module, path.read_text(), path.name == "__init__.py")
    assert not wrong, "lower layers must not import higher ones:\n" + "\n".join(wrong)


def test_the_rule_can_fail():
    # an upward import, at the top or inside a function, relative or absolute, is caught
    text = "from burstkpn import __version__\ndef f():\n    from ..inference import Runner\n"
    assert upward_imports("burstkpn.models.kpn", text) == [
        "burstkpn.models.kpn:3 imports burstkpn.inference (layer 3 > 2)"
    ]
    assert upward_imports("burstkpn.data.io.files", "from burstkpn import jobs\n")
    assert not upward_imports("burstkpn.cli.train", "import burstkpn.models.kpn\n")
    assert layer("burstkpn.bench.quality") == layer("burstkpn.train.loop")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module_name(path)} has {lines} lines: split it"
