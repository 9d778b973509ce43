"""Build-time check that a function's deps layer holds everything its code imports.

Every ``import`` statement (module level or inside functions, ``TYPE_CHECKING`` blocks
excepted) of the handler module and of every own module it reaches is resolved: standard
library, our own packages and what the Lambda runtime provides are fine; any other top-level
package must belong to a distribution in the function's set (``layers/deps/functions.json``,
from the import trace). The layer build calls :func:`missing_distributions` and fails with
the offending module and import, so a new import never ships as a run-time ImportError.
"""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_SETS = REPO_ROOT / "layers" / "deps" / "functions.json"
OWN_ROOTS = {
    "mlserve": REPO_ROOT / "layers" / "common" / "python",
    "lambda_api": REPO_ROOT,
    "lambda_batch": REPO_ROOT,
    "lambda_promote": REPO_ROOT,
}
HANDLER_MODULES = {
    "api": "lambda_api.handler",
    "batch": "lambda_batch.handler",
    "promote": "lambda_promote.redeploy",
    "webhook": "lambda_promote.webhook",
    "stream": "lambda_batch.stream",
    "scheduled": "lambda_batch.scheduled",
}
# Boosted-model libraries (mlserve.boosted imports them lazily, per flavor): too big for the
# zip budget, so they ship only in the container image (packaging=image, infra/image.py);
# a zip function that meets such a model refuses it at load with the reason.
IMAGE_ONLY = frozenset({"lightgbm", "xgboost", "catboost"})
# Shipped by the Lambda Python runtime (the SDK and the SnapStart hook module).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "snapshot_restore_py"})


class MissingDependencyError(RuntimeError):
    """A function imports a package its dependency set lacks."""


@dataclass(frozen=True)
class Finding:
    module: str
    imported: str
    distribution: str | None

    def __str__(self) -> str:
        owner = f"distribution {self.distribution!r}" if self.distribution else "no installed distribution"
        return f"{self.module} imports {self.imported!r} ({owner})"


def _module_file(module: str) -> Path | None:
    root = OWN_ROOTS.get(module.partition(".")[0])
    if root is None:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append(base)
            found.extend(f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def reachable_imports(handler_module: str) -> dict[str, str]:
    """Third-party top-level package -> the first own module importing it, over every own
    module reachable from the handler (package ``__init__`` modules included)."""
    third_party: dict[str, str] = {}
    seen: set[str] = set()
    stack = [handler_module]
    while stack:
        module = stack.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        for depth in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__
            stack.append(".".join(parts[:depth]))
        path = _module_file(module)
        if path is None:
            continue
        for imported in _imports(module, path):
            top = imported.partition(".")[0]
            if top in OWN_ROOTS:
                stack.append(imported)
            elif top and top not in sys.stdlib_module_names and top not in RUNTIME_PROVIDED | IMAGE_ONLY:
                third_party.setdefault(top, module)
    return third_party


@cache
def _distributions_of() -> dict[str, list[str]]:
    return {top: list(dists) for top, dists in packages_distributions().items()}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def function_set(kind: str, sets: Path = FUNCTION_SETS) -> set[str]:
    return {_canonical(d) for d in json.loads(sets.read_text())[kind]}


def missing_distributions(kind: str, sets: Path = FUNCTION_SETS) -> list[Finding]:
    allowed = function_set(kind, sets)
    findings = []
    for top, module in sorted(reachable_imports(HANDLER_MODULES[kind]).items()):
        dists = [_canonical(d) for d in _distributions_of().get(top, [])]
        if not dists:
            findings.append(Finding(module, top, None))
        elif not allowed.intersection(dists):
            findings.append(Finding(module, top, dists[0]))
    return findings


def check_function_imports(kind: str, sets: Path = FUNCTION_SETS) -> None:
    findings = missing_distributions(kind, sets)
    if findings:
        details = "; ".join(str(finding) for finding in findings)
        raise MissingDependencyError(
            f"function {kind!r} imports what its dependency set ({sets.name}) lacks: {details}. "
            "Re-run `python layers/deps/trace_imports.py` (and pin new packages in requirements.txt)."
        )
