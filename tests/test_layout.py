"""The shape of the code: module size, no import circle, and layers that only import downwards.

Imports are read from the source with ast (nothing is imported), at every depth: an import inside
a function is a dependency too, only later. `LAYERS` lists the modules of cgan/ and app/ from the
bottom up; a module may import its own layer and the ones below it, never one above. A new module
goes into the layer of what it imports.
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cgan", "app")
MAX_LINES = 450

# Low to high. Patterns match module names (fnmatch); a module takes the first layer that matches.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("cgan", "cgan.limits", "cgan.messages", "cgan.cli", "cgan.images", "cgan.keep")),
    ("files", ("cgan.files", "cgan.processes")),
    ("networks and data", ("cgan.models", "cgan.data", "cgan.history")),
    ("the run format", ("cgan.run_folder", "cgan.runs")),
    ("the schema", ("cgan.config",)),
    ("reading runs", ("cgan.sampling", "cgan.sample", "cgan.threads", "cgan.interpolate",
                      "cgan.classifier", "cgan.neighbours", "cgan.quality", "cgan.verdict",
                      "cgan.symptoms", "cgan.metrics")),
    ("training", ("cgan.training", "cgan.training.*", "cgan.train", "cgan.mlp_step", "cgan.bench")),
    ("jobs", ("cgan.jobs", "cgan.jobs.*")),
    ("ready-made runs", ("cgan.presets", "cgan.pretrained")),
    ("app pieces", ("app", "app.i18n", "app.numbers", "app.text", "app.style", "app.safety",
                    "app.access", "app.plots", "app.figures", "app.loaders", "app.common",
                    "app.selection", "app.widgets", "app.preload")),
    ("app pages", ("app.views", "app.views.*")),
    ("app entry", ("app.main", "app.__main__")),
]

# The trainer's own modules: the app starts training as a process and reads the schema
# (cgan.config) only, so none of these is loaded into the Streamlit server.
TRAINER = ("cgan.training", "cgan.training.*", "cgan.train", "cgan.mlp_step")
FORBIDDEN_IN_CGAN = ("app", "streamlit")


@dataclass(frozen=True)
class Import:
    target: str  # a module of cgan/ or app/, or the top-level name of any other package
    line: int
    at_module_level: bool  # run when the module is loaded (not inside a function)
    internal: bool


def module_files() -> dict[str, Path]:
    """Every module of cgan/ and app/ by its dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, in_function: bool):
    """(import node, whether it sits inside a function), skipping `if TYPE_CHECKING:` blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _walk_one(other, in_function)
            continue
        yield from _walk_one(child, in_function)


def _walk_one(node: ast.AST, in_function: bool):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, in_function
    inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    yield from _walk(node, inside)


def _known(name: str) -> str | None:
    """The longest prefix of `name` that is a module of cgan/ or app/."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node, in_function in _walk(tree, False):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from cgan import jobs` imports the module cgan.jobs; `from cgan.runs import Run` cgan.runs.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        for name in dict.fromkeys(names):
            known = _known(name)
            found.append(Import(known or name.split(".")[0], node.lineno, not in_function, known is not None))
    return tuple(found)


def internal_edges(module: str, module_level_only: bool = False) -> set[str]:
    return {i.target for i in imports_of(module)
            if i.internal and i.target != module and (i.at_module_level or not module_level_only)}


def matches(module: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns)


def layer_of(module: str) -> int | None:
    for index, (_, patterns) in enumerate(LAYERS):
        if matches(module, patterns):
            return index
    return None


# ---------------------------------------------------------------------------------------------


def test_the_layout_reads_the_real_tree():
    # Guards the checks below against passing on nothing: they see the modules and their imports.
    assert {"cgan.runs", "cgan.files", "cgan.sampling", "app.main", "app.views.train"} <= set(MODULES)
    assert "cgan.files" in internal_edges("cgan.runs")
    assert "cgan.messages" in internal_edges("cgan.cli")  # a function-level import counts
    assert "cgan.messages" not in internal_edges("cgan.cli", module_level_only=True)
    assert any(i.target == "torch" and not i.internal for i in imports_of("cgan.runs"))
    assert layer_of("cgan.files") < layer_of("cgan.runs") < layer_of("cgan.sampling") \
        < layer_of("cgan.training.loop") < layer_of("cgan.jobs.local") < layer_of("app.views.train")


def test_no_module_is_longer_than_the_limit():
    long = {name: count for name, path in MODULES.items()
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: " + ", ".join(
        f"{path_of(name)} ({count})" for name, count in sorted(long.items(), key=lambda item: -item[1]))


def path_of(module: str) -> str:
    return str(MODULES[module].relative_to(ROOT))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def test_strongly_connected_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert sorted(c for c in strongly_connected(graph) if len(c) > 1) == [["a", "b", "c"]]


def test_no_import_circle():
    graph = {module: internal_edges(module) for module in MODULES}
    circles = [component for component in strongly_connected(graph) if len(component) > 1]
    described = []
    for component in circles:
        members = set(component)
        edges = [f"{a} -> {b} (line {i.line})" for a in component for i in imports_of(a)
                 if (b := i.target) in members and b != a]
        described.append("{" + ", ".join(component) + "}: " + "; ".join(edges))
    assert not circles, "import circles: " + " | ".join(described)


def test_cgan_never_imports_the_app_or_streamlit():
    found = [f"{path_of(module)}:{i.line} imports {i.target}"
             for module in MODULES if module.split(".")[0] == "cgan"
             for i in imports_of(module) if i.target.split(".")[0] in FORBIDDEN_IN_CGAN]
    assert not found, found


def chain_to(start: str, goal) -> list[str] | None:
    """The shortest chain of module-level imports from `start` to a module `goal` accepts."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node != start and goal(node):
            chain = [node]
            while previous[chain[-1]] is not None:
                chain.append(previous[chain[-1]])
            return chain[::-1]
        for child in sorted(internal_edges(node, module_level_only=True)):
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return None


def test_the_app_never_loads_the_trainer():
    def is_trainer(module: str) -> bool:
        return matches(module, TRAINER)

    found = []
    for module in MODULES:
        if module.split(".")[0] != "app":
            continue
        direct = [i for i in imports_of(module) if i.internal and is_trainer(i.target)]
        found += [f"{path_of(module)}:{i.line} imports {i.target}" for i in direct]
        chain = chain_to(module, is_trainer)
        if chain and len(chain) > 2:
            found.append(" -> ".join(chain))
    assert not found, "the app loads the trainer: " + "; ".join(sorted(set(found)))


def test_every_module_has_a_layer():
    unplaced = [path_of(module) for module in MODULES if layer_of(module) is None]
    assert not unplaced, f"put these in LAYERS (tests/test_layout.py): {unplaced}"


def test_no_module_imports_a_layer_above_its_own():
    found = []
    for module in MODULES:
        own = layer_of(module)
        if own is None:
            continue  # test_every_module_has_a_layer names it
        for i in imports_of(module):
            other = layer_of(i.target) if i.internal else None
            if other is not None and other > own:
                found.append(f"{path_of(module)}:{i.line} ({LAYERS[own][0]}) imports {i.target} "
                             f"({LAYERS[other][0]})")
    assert not found, "imports upwards: " + "; ".join(found)
