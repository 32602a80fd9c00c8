"""The package's import graph: no module imports another that imports it back (also through imports
inside functions, which hide a circle until both sides are refactored), and the two PyTorch ports
share their helpers through a module of their own, not through each other. A module's
``if __name__ == "__main__":`` block is a program using the package (``python -m cogan_tf.evaluate``
dispatches to grid_compare), not a dependency of the module, so its imports are left out."""

import ast
import os

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "cogan_tf")


def is_main_block(node):
    """``if __name__ == "__main__":``"""
    t = node.test if isinstance(node, ast.If) else None
    return (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__"
            and len(t.comparators) == 1 and isinstance(t.comparators[0], ast.Constant)
            and t.comparators[0].value == "__main__")


def package_imports(path):
    """Names of the cogan_tf modules ``path`` imports anywhere in its body (its ``__main__`` block aside)."""
    tree = ast.parse(open(path).read(), path)
    tree.body = [n for n in tree.body if not is_main_block(n)]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cogan_tf":
            if node.module == "cogan_tf":
                found.update(alias.name for alias in node.names)  # from cogan_tf import data, train
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("cogan_tf."))
    return found


def import_graph():
    modules = {f[:-3] for f in os.listdir(PACKAGE) if f.endswith(".py")}
    return {m: package_imports(os.path.join(PACKAGE, m + ".py")) & modules - {m} for m in modules}


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


def test_main_blocks_are_left_out(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from cogan_tf import data\ndef f():\n    from cogan_tf import train\n"
                 "if __name__ == '__main__':\n    from cogan_tf import evaluate\n")
    assert package_imports(str(p)) == {"data", "train"}


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert {"evaluate", "runner", "clustergan", "vanilla", "torch_port"} <= set(graph)
    assert "runner" in graph["evaluate"]  # evaluate rebuilds a GAN from a checkpoint through runner
    assert cycles(graph) == []


def test_clustergan_does_not_import_the_vanilla_gan():
    graph = import_graph()
    assert "vanilla" not in graph["clustergan"]
    assert "torch_port" in graph["clustergan"] and "torch_port" in graph["vanilla"]
