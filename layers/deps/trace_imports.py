"""Derive each Lambda function's third-party dependency set from what its handler imports
while its tests run, and write ``layers/deps/functions.json`` (checked in).

    python layers/deps/trace_imports.py            # all functions (a few minutes)
    python layers/deps/trace_imports.py webhook    # one

How: each function's tests run in a fresh interpreter in which ``builtins.__import__`` is
wrapped to record every executed import statement as an edge *importer -> imported*
(our own modules by full name, third-party ones by top-level package). After the run the
edges are walked from the handler module; the third-party top-level packages reached are
mapped to their distributions (``importlib.metadata.packages_distributions``). Edges are
not followed *through* the SDK the Lambda runtime provides (boto3, botocore, s3transfer):
their own dependencies come with the runtime, not with our layer.

Versions are NOT chosen here: the deps layer of a function is ``requirements.txt`` (the one
place pins live) filtered to that function's set, installed with ``--no-deps``.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEPS_DIR = Path(__file__).resolve().parent
REPO_ROOT = DEPS_DIR.parent.parent
FUNCTION_SETS = DEPS_DIR / "functions.json"

# function kind -> (handler module, the tests that drive it)
FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "api": (
        "lambda_api.handler",
        ("tests/integration/test_lambda_api.py", "tests/integration/test_snapstart_hooks.py"),
    ),
    "batch": (
        "lambda_batch.handler",
        ("tests/unit/batch/test_batch_s3.py", "tests/integration/test_snapstart_hooks.py"),
    ),
    "promote": (
        "lambda_promote.redeploy",
        ("tests/integration/promotion/test_promotion_flow.py", "tests/integration/test_snapstart_hooks.py"),
    ),
    "webhook": ("lambda_promote.webhook", ("tests/integration/promotion/test_promotion_webhook.py",)),
    "stream": ("lambda_batch.stream", ("tests/integration/streaming/test_stream_consumer.py",)),
    "scheduled": ("lambda_batch.scheduled", ("tests/integration/streaming/test_scheduled_batch.py",)),
}
OWN_PACKAGES = ("mlserve", "lambda_api", "lambda_batch", "lambda_promote")
# The Lambda Python runtime ships these (and whatever they need).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# The runtime's SnapStart hook module (pip package snapshot-restore-py is only its stand-in).
RUNTIME_MODULES = frozenset({"snapshot_restore_py"})


def _node(module: str) -> str:
    top = module.partition(".")[0]
    return module if top in OWN_PACKAGES else top


class ImportRecorder:
    """Records importer -> imported edges for every import statement executed."""

    def __init__(self) -> None:
        self.edges: dict[str, set[str]] = defaultdict(set)
        self._original = builtins.__import__

    def install(self) -> None:
        builtins.__import__ = self._import

    def _import(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        module = self._original(name, globals, locals, fromlist, level)
        importer = (globals or {}).get("__name__") if isinstance(globals, dict) else None
        if importer and not importer.startswith("_pytest"):
            if level:
                package = (globals or {}).get("__package__") or ""
                base = package.rsplit(".", level - 1)[0] if level > 1 else package
                name = f"{base}.{name}" if name else base
            targets = [name]
            for item in fromlist or ():
                if isinstance(item, str) and f"{name}.{item}" in sys.modules:
                    targets.append(f"{name}.{item}")
            source = _node(importer)
            for target in targets:
                node = _node(target)
                if node != source:
                    self.edges[source].add(node)
        return module


@functools.cache
def _top_level_map() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return dict(packages_distributions())


def _dists_of(top: str) -> set[str]:
    return {canonical(d) for d in _top_level_map().get(top, ())}


@functools.cache
def _required(dist: str) -> set[str]:
    """A distribution's unconditional requirements (extras are optional integrations)."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        lines = requires(dist) or []
    except PackageNotFoundError:
        return set()
    names = set()
    for line in lines:
        if "extra ==" in line.replace('"', "").replace("'", ""):
            continue
        names.add(canonical(re.split(r"[\s;<>=!~\[(]", line.strip(), maxsplit=1)[0]))
    return names


def _is_skipped(node: str, root: str) -> bool:
    # The runtime's SDK brings its own deps; the standard library's edges are every dynamic
    # import of the whole process (importlib), not this function's.
    return node in RUNTIME_PROVIDED or (node != root and node.partition(".")[0] in sys.stdlib_module_names)


def reachable(edges: dict[str, set[str]], root: str) -> dict[str, set[str]]:
    """Node -> the distributions it stands for, over the graph from ``root``.

    Our code's imports always count. A third-party package's import counts only when the
    target is the same distribution or one it requires: an installed extra it probes for
    (pandas -> pyarrow, anyio -> pytest) is in this process because of the tests, not in
    Lambda. That rule also splits namespace packages (``opentelemetry`` is four
    distributions here; fastapi requires only opentelemetry-api)."""
    selected: dict[str, set[str]] = {root: set()}
    stack = [root]
    while stack:
        node = stack.pop()
        if _is_skipped(node, root):
            continue
        own = node.partition(".")[0] in OWN_PACKAGES
        sources = selected[node]
        allowed = set().union(sources, *(_required(d) for d in sources))
        for target in edges.get(node, ()):
            if target.partition(".")[0] in OWN_PACKAGES:
                dists: set[str] = set()
            else:
                candidates = _dists_of(target)
                dists = candidates if own else candidates & allowed
                if not dists and not _is_skipped(target, root):
                    continue
            if target not in selected or not dists <= selected[target]:
                selected[target] = selected.get(target, set()) | dists
                stack.append(target)
    return selected


def distributions(reached: dict[str, set[str]] | Iterable[str]) -> list[str]:
    """The distributions behind the reached third-party nodes (nodes without a recorded
    selection, e.g. from the static scan, map to every distribution of their package)."""
    found: set[str] = set()
    items = reached.items() if isinstance(reached, dict) else ((top, None) for top in reached)
    for top, dists in items:
        if top.partition(".")[0] in OWN_PACKAGES or top.partition(".")[0] in sys.stdlib_module_names:
            continue
        if top in RUNTIME_PROVIDED or top in RUNTIME_MODULES or top.startswith("_"):
            continue
        found |= dists if dists else _dists_of(top)
    return sorted(found)


def static_distributions(kind: str) -> list[str]:
    sys.path.insert(0, str(REPO_ROOT))
    from infra.dependency_check import reachable_imports

    return distributions(list(reachable_imports(FUNCTIONS[kind][0])))


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _child(kind: str, output: Path) -> int:
    recorder = ImportRecorder()
    recorder.install()
    import pytest

    _handler, tests = FUNCTIONS[kind]
    status = pytest.main(["-q", "-p", "no:cacheprovider", "-x", *tests])
    edges = {source: sorted(targets) for source, targets in recorder.edges.items()}
    output.write_text(json.dumps({"status": int(status), "edges": edges}))
    return int(status)


def trace(kind: str, keep: Path | None = None) -> list[str]:
    """Run the function's tests under the recorder (a fresh interpreter) and reduce the
    recorded import graph to the distributions the handler reaches."""
    output = keep or DEPS_DIR / f".trace-{kind}.json"
    if keep is None or not keep.exists():
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        subprocess.run([sys.executable, __file__, "--child", kind, str(output)], cwd=REPO_ROOT, env=env, check=False)
    result = json.loads(output.read_text())
    if keep is None:
        output.unlink()
    if result["status"] != 0:
        raise SystemExit(f"{kind}: its tests failed under the trace (status {result['status']}); fix them first")
    edges = {source: set(targets) for source, targets in result["edges"].items()}
    return distributions(reachable(edges, FUNCTIONS[kind][0]))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        return _child(argv[1], Path(argv[2]))
    # --keep DIR: keep (and reuse) each function's recorded graph there, to iterate on the
    # reduction without re-running the tests.
    keep_dir = Path(argv[1]) if argv[:1] == ["--keep"] else None
    argv = argv[2:] if keep_dir else argv
    kinds = argv or list(FUNCTIONS)
    sets = json.loads(FUNCTION_SETS.read_text()) if FUNCTION_SETS.exists() else {}
    for kind in kinds:
        # What ran under the tests, plus what the code imports on paths the tests did not
        # take (e.g. the opt-in pickle loader): the build check (infra/dependency_check.py)
        # refuses a set that lacks either.
        keep = keep_dir / f"{kind}.json" if keep_dir else None
        sets[kind] = sorted(set(trace(kind, keep)) | set(static_distributions(kind)))
        print(f"{kind}: {', '.join(sets[kind])}")
    FUNCTION_SETS.write_text(json.dumps(dict(sorted(sets.items())), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
