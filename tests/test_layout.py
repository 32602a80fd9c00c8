"""The package's shape: no import circle (also through imports inside functions, which hide a circle
until both sides are refactored); no module over 500 lines; absl flags defined only by programs,
never when a library module is imported; every module has a test module of its own. And two facts of the
layout: the two PyTorch ports share their helpers through a module of their own, not through each other; the
evaluation rebuilds a GAN through the runner, never the other way round. And the suite's own footprint: a passing
test's temporary folder is deleted.

A module's ``if __name__ == "__main__":`` block is a program using the package, not a dependency of
the module, so its imports are left out of the graph."""

import ast
import os
import subprocess
import sys

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "cogan_tf")
MAX_LINES = 500


def module_files():
    """Dotted module name inside the package ("config", "evaluate", "evaluate.grid_compare") -> path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(PACKAGE):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "__pycache__"))]
        rel = os.path.relpath(dirpath, PACKAGE)
        parts = [] if rel == "." else rel.split(os.sep)
        for f in filenames:
            if f.endswith(".py"):
                name = ".".join(parts + ([] if f == "__init__.py" else [f[:-3]]))
                out[name or "__init__"] = os.path.join(dirpath, f)
    return out


def is_main_block(node):
    """``if __name__ == "__main__":``"""
    t = node.test if isinstance(node, ast.If) else None
    return (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__"
            and len(t.comparators) == 1 and isinstance(t.comparators[0], ast.Constant)
            and t.comparators[0].value == "__main__")


def parse(path, main_block=False):
    """The module's syntax tree without (or, ``main_block``, only) its ``__main__`` block."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    tree.body = [n for n in tree.body if is_main_block(n) == main_block]
    return tree


def package_imports(path, modules=None):
    """The package modules ``path`` imports anywhere in its body (its ``__main__`` block aside), by dotted
    name; ``modules`` (the package's modules) tells ``from cogan_tf.evaluate import grid_compare`` (a
    submodule) from ``from cogan_tf.evaluate import DEFAULT_N`` (a name of the package). Importing a
    submodule imports its parent packages first: they count too."""
    modules = set(module_files()) if modules is None else modules
    found = set()

    def add(name):
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))

    for node in ast.walk(parse(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cogan_tf":
            base = node.module.split(".")[1:]
            for alias in node.names:
                sub = ".".join(base + [alias.name])
                if sub in modules or not base:
                    add(sub)  # from cogan_tf import data; from cogan_tf.evaluate import grid_compare
                else:
                    add(".".join(base))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("cogan_tf."):
                    add(a.name.split(".", 1)[1])
    return found


def import_graph():
    files = module_files()
    mods = set(files)
    return {m: (package_imports(p, mods) & mods) - {m} for m, p in files.items()}


def cycles(graph):
    """Every import circle, as the list of modules along it (depth-first search)."""
    found, state = [], {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                found.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return found


def reachable(graph, start):
    seen, stack = set(), [start]
    while stack:
        for n in graph[stack.pop()]:
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return seen


# --- the checkers themselves ----------------------------------------------------------------------------

def test_main_blocks_are_left_out(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from cogan_tf import data\ndef f():\n    from cogan_tf import train\n"
                 "if __name__ == '__main__':\n    from cogan_tf import evaluate\n")
    assert package_imports(str(p)) == {"data", "train"}


def test_submodules_and_their_packages_are_told_apart(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from cogan_tf.evaluate import grid_compare, DEFAULT_N\nimport cogan_tf.bench.flops\n")
    assert package_imports(str(p), {"evaluate", "evaluate.grid_compare", "bench", "bench.flops"}) == {
        "evaluate", "evaluate.grid_compare", "bench", "bench.flops"}


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_flag_finder_finds_flags_outside_a_program(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from absl import flags\nflags.DEFINE_integer('a', 1, '')\n"
                 "def define():\n    flags.DEFINE_integer('b', 1, '')\ndefine()\n"
                 "def program():\n    flags.DEFINE_integer('c', 1, '')\n"
                 "if __name__ == '__main__':\n    program()\n    flags.DEFINE_integer('d', 1, '')\n")
    assert flags_outside_programs(str(p)) == ["line 2", "define() (line 3), called outside the __main__ block"]


# --- the rules --------------------------------------------------------------------------------------------

def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert {"evaluate", "runner", "run", "record", "clustergan", "vanilla", "torch_layers", "history"} <= set(graph)
    assert cycles(graph) == []


def test_no_package_module_is_over_500_lines():
    sizes = {m: sum(1 for _ in open(p)) for m, p in module_files().items()}
    assert len(sizes) > 20
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def flags_outside_programs(path):
    """Where ``path`` defines absl flags other than in its ``__main__`` block or in a function that only
    its ``__main__`` block calls."""
    bad = []
    tree = parse(path)

    def defines(node):
        return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr.startswith("DEFINE")
                   for n in ast.walk(node))

    functions = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = node
        elif defines(node):
            bad.append(f"line {node.lineno}")
    for name, fn in functions.items():
        if not defines(fn):
            continue
        used = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
        if used:
            bad.append(f"{name}() (line {fn.lineno}), called outside the __main__ block")
    return bad


def test_flags_are_defined_only_by_programs():
    files = module_files()
    assert {m: flags_outside_programs(p) for m, p in files.items() if flags_outside_programs(p)} == {}
    # And at run time: importing every module of the package defines no flag (absl's own aside).
    code = ("import importlib, sys\nfrom absl import flags\nimport tensorflow, keras\n"
            "before = set(flags.FLAGS)\n"
            f"for m in {sorted(files)!r}:\n"
            "    importlib.import_module('cogan_tf' if m == '__init__' else 'cogan_tf.' + m)\n"
            "print(sorted(set(flags.FLAGS) - before))\n")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"


# Test modules named with their subpackage too, where the module's bare name would be ambiguous (a clash with
# another module's name is found by expected_test_module itself).
AMBIGUOUS = {"bench.report",  # beside evaluate.reports
             "bench.rows", "bench.steps"}  # the benchmark's, not the training loop's


def expected_test_module(module, modules):
    """The test module of a package module: ``test_<name>`` after its file's name, with its subpackage too
    (``test_bench_report``) where the bare name is another module's as well or is :data:`AMBIGUOUS`; None for a
    package's ``__init__`` (its docstring: what the package holds) and a ``__main__`` (a program, tested in a
    real process by the package's own test module: test_bench.py, test_evaluate.py, test_package.py)."""
    path = modules[module]
    if os.path.basename(path) in ("__init__.py", "__main__.py"):
        return None
    *package, name = module.split(".")
    elsewhere = {m.rsplit(".", 1)[-1] for m in modules if m != module}
    if package and (name in elsewhere or module in AMBIGUOUS):
        return "_".join(["test"] + package + [name])
    return f"test_{name}"


def test_the_test_module_names():
    modules = {"__init__": "cogan_tf/__init__.py", "data": "cogan_tf/data.py", "download": "cogan_tf/download.py",
               "bench": "cogan_tf/bench/__init__.py", "bench.__main__": "cogan_tf/bench/__main__.py",
               "bench.report": "cogan_tf/bench/report.py", "bench.flops": "cogan_tf/bench/flops.py",
               "scripts.download": "cogan_tf/scripts/download.py"}
    assert {m: expected_test_module(m, modules) for m in modules} == {
        "__init__": None, "data": "test_data", "download": "test_download", "bench": None, "bench.__main__": None,
        "bench.report": "test_bench_report", "bench.flops": "test_flops", "scripts.download": "test_scripts_download"}


def test_every_module_has_its_test_module():
    modules = module_files()
    tests = {f[:-3] for f in os.listdir(os.path.join(ROOT, "tests")) if f.startswith("test_") and f.endswith(".py")}
    expected = {m: expected_test_module(m, modules) for m in modules}
    assert len([t for t in expected.values() if t]) > 40
    missing = {m: t for m, t in expected.items() if t and t not in tests}
    assert missing == {}


# --- facts of the layout ------------------------------------------------------------------------------------

def test_clustergan_does_not_import_the_vanilla_gan():
    graph = import_graph()
    assert "vanilla" not in graph["clustergan"]
    assert "history" in graph["clustergan"] and "history" in graph["vanilla"]  # what the two ports share
    assert "torch_layers" in graph["clustergan_networks"] and "torch_layers" in graph["vanilla"]


def test_evaluation_rebuilds_a_gan_through_the_runner():
    graph = import_graph()
    assert "runner" in graph["evaluate.__main__"]  # python -m cogan_tf.evaluate --checkpoint_dir
    assert not any(m == "evaluate" or m.startswith("evaluate.") for m in reachable(graph, "runner"))


def test_errors_is_a_leaf():
    assert import_graph()["errors"] == set()


def test_the_readme_layout_names_every_module():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Layout"):].split("\n")[1:]
    table = "\n".join(line for line in section[:next((i for i, x in enumerate(section) if x.startswith("#")),
                                                     len(section))] if line.startswith("|"))
    missing = []
    for m in module_files():
        top = m.split(".")[0]
        if m == "__init__" or "." in m or os.path.isdir(os.path.join(PACKAGE, top)):
            # A subpackage is named by its folder.
            if f"cogan_tf/{top}/" not in table and m != "__init__":
                missing.append(f"cogan_tf/{top}/")
        elif f"`cogan_tf/{m}.py`" not in table and f"`{m}.py`" not in table:
            missing.append(f"{m}.py")
    assert sorted(set(missing)) == []


def test_a_passing_test_leaves_no_temporary_folder(tmp_path):
    """The suite writes gigabytes of runs and exports into its tests' temporary folders; the project's pytest.ini
    has pytest delete a passing test's folder and keep a failing one's."""
    (tmp_path / "test_probe.py").write_text(
        "def test_passes(tmp_path):\n    (tmp_path / 'big').write_bytes(b'x' * 1000)\n\n"
        "def test_fails(tmp_path):\n    (tmp_path / 'kept').write_bytes(b'x')\n    assert False\n")
    temproot = tmp_path / "temproot"
    temproot.mkdir()
    env = dict(os.environ, PYTEST_DEBUG_TEMPROOT=str(temproot))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
                    os.path.join(ROOT, "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
                   env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    left = sorted(p.name for p in temproot.rglob("*") if p.is_file())
    assert left == ["kept"]
