"""The layout's rules, read from the source: data (no TensorFlow) <- net <- run <- the scripts at the root; no import
cycle, counting imports inside functions; nothing in the package reads FLAGS or imports a root script; files stay
short; the tests mirror the package."""
import ast
import os
import re

from tests.helpers import PROJECT_DIR

PACKAGE = "fcn_tensorflow"
LEAVES = ("console", "metrics", "pictures")  # the package's small modules, below every layer
ROOT_SCRIPTS = ("FCN", "TensorflowUtils", "BatchDatsetReader", "read_MITSceneParsingData", "benchmark", "demo_data")
MAX_LINES = 400


def python_files(folder):
    for directory, folders, files in os.walk(os.path.join(PROJECT_DIR, folder)):
        folders[:] = [name for name in folders if name != "__pycache__"]
        yield from (os.path.join(directory, name) for name in sorted(files) if name.endswith(".py"))


def module_name(path):
    relative = os.path.relpath(path, PROJECT_DIR)[:-len(".py")].split(os.sep)
    return ".".join(relative[:-1] if relative[-1] == "__init__" else relative)


def package_modules():
    return {module_name(path): path for path in python_files(PACKAGE)}


def imported(path, known, anywhere=True):
    """The modules `path` imports anywhere in it (functions included) or at its top level only, as names of `known`
    where they are one."""
    names = set()
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree) if anywhere else tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = node.module + "." + alias.name
                names.add(full if full in known else node.module)
    return names


def import_graph():
    modules = package_modules()
    known = set(modules) | set(ROOT_SCRIPTS)
    return {name: imported(path, known) for name, path in modules.items()}


def layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "leaf"


def test_data_imports_no_tensorflow_and_net_never_imports_run():
    """console imports TensorFlow in the one function that loads it with its noise filtered, which data never
    calls: a leaf module may, in a function; data may not at all."""
    graph = import_graph()
    modules = package_modules()
    allowed = {"leaf": {"leaf"}, "data": {"leaf", "data"}, "net": {"leaf", "data", "net"},
               "run": {"leaf", "data", "net", "run"}}
    for module, names in graph.items():
        inside = {name for name in names if name.startswith(PACKAGE + ".") and name in graph}
        assert {layer(name) for name in inside} <= allowed[layer(module)], (module, inside)
        if layer(module) in ("leaf", "data"):
            names = names if layer(module) == "data" else imported(modules[module], set(modules), anywhere=False)
            assert not {name for name in names if name.split(".")[0] == "tensorflow"}, module


def test_the_package_never_imports_a_root_script_nor_reads_flags():
    for module, names in import_graph().items():
        assert not names & set(ROOT_SCRIPTS), module
    for path in package_modules().values():
        source = open(path).read()
        assert not re.search(r"\bFLAGS\b", source), path
        assert not re.search(r"import_module|__import__|sys\.modules|LazyLoader", source), path  # no lazy imports


def test_no_import_cycle():
    graph = import_graph()
    done, stack = set(), []

    def visit(module):
        assert module not in stack, "cycle: " + " -> ".join(stack[stack.index(module):] + [module])
        if module in done:
            return
        stack.append(module)
        for name in sorted(graph[module] & set(graph)):
            visit(name)
        stack.pop()
        done.add(module)
    for module in sorted(graph):
        visit(module)


def test_the_root_holds_the_scripts_and_one_package():
    root_files = [name for name in os.listdir(PROJECT_DIR) if name.endswith(".py") and name != "conftest.py"]
    assert len(root_files) <= 7 and {name + ".py" for name in ROOT_SCRIPTS[:4]} <= set(root_files), root_files
    packages = [name for name in os.listdir(PROJECT_DIR) if name not in ("tests",)
                and os.path.exists(os.path.join(PROJECT_DIR, name, "__init__.py"))]
    assert packages == [PACKAGE]
    fcn = open(os.path.join(PROJECT_DIR, "FCN.py")).read()
    assert not re.search(r"\bimportlib\b|sys\.modules|LazyLoader", fcn)


def test_no_python_file_is_longer_than_400_lines():
    for folder in (PACKAGE, "tests"):
        for path in python_files(folder):
            assert len(open(path).read().splitlines()) <= MAX_LINES, path
    for name in os.listdir(PROJECT_DIR):
        if name.endswith(".py"):
            assert len(open(os.path.join(PROJECT_DIR, name)).read().splitlines()) <= MAX_LINES, name


def test_the_tests_mirror_the_package():
    for module, path in package_modules().items():
        if os.path.basename(path) in ("__init__.py", "__main__.py"):
            continue
        parts = module.split(".")[1:]
        test_path = os.path.join(PROJECT_DIR, "tests", *parts[:-1], "test_%s.py" % parts[-1])
        assert os.path.exists(test_path), "%s has no %s" % (module, os.path.relpath(test_path, PROJECT_DIR))
        assert re.search(r"^def test_", open(test_path).read(), re.M), test_path
