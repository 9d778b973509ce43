"""Applies layers/deps/prune.toml to a pip-installed deps tree (the layer build's last step
before bytecode), and the checks that prove a pruned tree is still complete.

The rules are data (the TOML file, one reason each); this module only knows how to apply
them. Stripping shared libraries is guarded per file: a library is replaced by its stripped
copy only when the dynamic loader would see exactly the same thing (same program headers, same
bytes in every loadable segment), which does not depend on the CPU the library is for.
"""

from __future__ import annotations

import ast
import os
import shutil
import struct
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PRUNE_RULES = Path(__file__).resolve().parent.parent / "layers" / "deps" / "prune.toml"

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
# ELF64 header fields that locate the section table: rewritten by strip, never read by the
# dynamic loader (it maps segments through the program headers only).
_SECTION_TABLE_FIELDS = ((0x28, 8), (0x3C, 4))  # e_shoff; e_shnum + e_shstrndx


@dataclass(frozen=True)
class PruneRules:
    distributions: tuple[str, ...]
    dir_names: frozenset[str]
    file_names: frozenset[str]
    suffixes: tuple[str, ...]
    paths: tuple[str, ...]
    keep_only: tuple[tuple[str, frozenset[str]], ...]
    allowed_references: frozenset[tuple[str, str]]
    dedupe: tuple[tuple[str, str], ...]
    strip_command: tuple[str, ...]

    @property
    def removed_modules(self) -> tuple[str, ...]:
        """The dotted module names the path rules remove (for the reference scan)."""
        return tuple(path.removesuffix(".py").replace("/", ".") for path in self.paths)


def _names(document: dict[str, object], key: str) -> list[str]:
    names: list[str] = []
    for rule in _reasoned(document, key):
        names += rule["names"]  # type: ignore[arg-type]
    return names


def _reasoned(document: dict[str, object], key: str) -> list[dict[str, object]]:
    rules = document.get(key, [])
    assert isinstance(rules, list), key
    for rule in rules:
        if not rule.get("reason"):
            raise ValueError(f"{PRUNE_RULES}: every [[{key}]] rule needs a reason: {rule}")
    return rules


@cache
def load_rules(path: Path = PRUNE_RULES) -> PruneRules:
    document = tomllib.loads(path.read_text())
    keep_only = tuple(
        (str(rule["path"]), frozenset(rule["names"]))  # type: ignore[call-overload]
        for rule in _reasoned(document, "keep_only")
    )
    allowed = frozenset(
        (str(rule["module"]), str(rule["target"])) for rule in _reasoned(document, "allowed_references")
    )
    dedupe = tuple((str(rule["keep"]), str(rule["drop"])) for rule in _reasoned(document, "dedupe"))
    strip = document.get("strip", {})
    assert isinstance(strip, dict)
    if strip and not strip.get("reason"):
        raise ValueError(f"{PRUNE_RULES}: [strip] needs a reason")
    return PruneRules(
        distributions=tuple(_names(document, "distributions")),
        dir_names=frozenset(_names(document, "dir_names")),
        file_names=frozenset(_names(document, "files")),
        suffixes=tuple(_names(document, "suffixes")),
        paths=tuple(_names(document, "paths")),
        keep_only=keep_only,
        allowed_references=allowed,
        dedupe=dedupe,
        strip_command=(strip["tool"], *strip.get("args", [])) if strip else (),
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_pruned_files(site_dir: Path, rules: PruneRules) -> None:
    """Everything but stripping: distributions, named paths, test dirs, suffixes."""
    for name in rules.distributions:
        _remove(site_dir / name)
        for dist_info in site_dir.glob(f"{name}-*.dist-info"):
            _remove(dist_info)
    for relative in rules.paths:
        target = site_dir / relative
        _remove(target)
        # An extension module is named by its module path: numpy/_core/_simd -> _simd.cpython-314-....so
        for extension in target.parent.glob(f"{target.name}.*.so") if target.parent.is_dir() else ():
            _remove(extension)
    for relative, kept in rules.keep_only:
        directory = site_dir / relative
        if directory.is_dir():
            for child in directory.iterdir():
                if child.name not in kept:
                    _remove(child)
    for kept_dir, dropped_dir in rules.dedupe:
        for library in sorted((site_dir / dropped_dir).glob("*")) if (site_dir / dropped_dir).is_dir() else ():
            twin = site_dir / kept_dir / library.name
            if twin.is_file() and library.is_file() and twin.read_bytes() == library.read_bytes():
                library.unlink()
    # Bottom-up so removing a directory never disturbs the walk.
    for dirpath, dirnames, filenames in os.walk(site_dir, topdown=False):
        current = Path(dirpath)
        for filename in filenames:
            if filename.endswith(rules.suffixes) or filename in rules.file_names:
                (current / filename).unlink()
        for dirname in dirnames:
            if dirname in rules.dir_names:
                shutil.rmtree(current / dirname, ignore_errors=True)


# --- stripping -------------------------------------------------------------------------


def _program_headers(image: bytes) -> list[tuple[int, ...]]:
    phoff = struct.unpack_from("<Q", image, 0x20)[0]
    entry_size, count = struct.unpack_from("<HH", image, 0x36)
    return [struct.unpack_from("<IIQQQQQQ", image, phoff + index * entry_size) for index in range(count)]


def _without_section_table_fields(image: bytes) -> bytes:
    masked = bytearray(image[:0x40])
    for offset, size in _SECTION_TABLE_FIELDS:
        masked[offset : offset + size] = bytes(size)
    return bytes(masked) + image[0x40:]


def is_elf64_le(image: bytes) -> bool:
    return len(image) >= 0x40 and image[:4] == ELF_MAGIC and image[4] == 2 and image[5] == 1


def loader_difference(original: bytes, stripped: bytes) -> str | None:
    """None when the dynamic loader sees the two files identically: the same program headers
    and, for every PT_LOAD segment, the same bytes over its file range. Otherwise why not."""
    if not (is_elf64_le(original) and is_elf64_le(stripped)):
        return "not a 64-bit little-endian ELF file"
    headers = _program_headers(original)
    if headers != _program_headers(stripped):
        return "program headers differ (segments moved)"
    before, after = _without_section_table_fields(original), _without_section_table_fields(stripped)
    for p_type, _flags, offset, _vaddr, _paddr, file_size, _mem_size, _align in headers:
        if p_type == PT_LOAD and before[offset : offset + file_size] != after[offset : offset + file_size]:
            return f"loadable segment at file offset {offset:#x} differs"
    return None


@dataclass
class StripReport:
    stripped: int = 0
    kept: int = 0
    saved_bytes: int = 0
    tool_missing: bool = False

    def line(self) -> str:
        if self.tool_missing:
            return "mlserve: no llvm-strip on this machine: the deps layer's libraries ship unstripped"
        return (
            f"mlserve: stripped {self.stripped} shared libraries ({self.saved_bytes / 2**20:.1f} MiB); "
            f"{self.kept} kept as built (stripping would move their segments)"
        )


def _elf_files(site_dir: Path) -> Iterator[Path]:
    for dirpath, _dirnames, filenames in os.walk(site_dir):
        for filename in filenames:
            path = Path(dirpath) / filename
            if ".so" in filename and path.is_file() and not path.is_symlink():
                with path.open("rb") as handle:
                    if handle.read(4) == ELF_MAGIC:
                        yield path


def strip_libraries(site_dir: Path, command: tuple[str, ...]) -> StripReport:
    """Strip each shared library when, and only when, loader_difference() finds none."""
    report = StripReport()
    if not command or shutil.which(command[0]) is None:
        report.tool_missing = True
        return report
    with tempfile.TemporaryDirectory(prefix="mlserve-strip-") as scratch:
        candidate = Path(scratch) / "candidate.so"
        for library in _elf_files(site_dir):
            original = library.read_bytes()
            candidate.write_bytes(original)
            result = subprocess.run([*command, str(candidate)], capture_output=True, check=False)
            stripped = candidate.read_bytes() if result.returncode == 0 else original
            if result.returncode != 0 or len(stripped) >= len(original) or loader_difference(original, stripped):
                report.kept += 1
                continue
            # Write in place (keeps the mode), only after the check passed.
            library.write_bytes(stripped)
            report.stripped += 1
            report.saved_bytes += len(original) - len(stripped)
    return report


def prune_tree(site_dir: Path, rules: PruneRules | None = None) -> StripReport:
    rules = rules or load_rules()
    remove_pruned_files(site_dir, rules)
    return strip_libraries(site_dir, rules.strip_command)


# --- the static completeness check ---------------------------------------------------------


def _module_name(site_dir: Path, source: Path) -> str:
    parts = source.relative_to(site_dir).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _referenced_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every dotted name a module could import: import statements anywhere (lazy ones in
    functions included, relative ones resolved), dotted attribute chains (``scipy.io.x``)
    and dotted string constants (``importlib.import_module("scipy.io")``)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute):
            parts = []
            current: ast.expr = node
            while isinstance(current, ast.Attribute):
                parts.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name):
                yield ".".join([current.id, *reversed(parts)])
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "." in node.value
            and node.value.replace(".", "").replace("_", "").isalnum()
        ):
            yield node.value


def dangling_references(site_dir: Path, rules: PruneRules | None = None) -> list[str]:
    """Kept modules that refer to a module the rules removed, minus the allowed ones:
    ``importer -> removed`` lines (empty when the pruned tree is complete)."""
    rules = rules or load_rules()
    removed = rules.removed_modules
    found: set[str] = set()
    for source in site_dir.rglob("*.py"):
        module = _module_name(site_dir, source)
        try:
            tree = ast.parse(source.read_bytes())
        except SyntaxError:
            continue
        for name in _referenced_names(tree, module, source.name == "__init__.py"):
            for target in removed:
                inside = module == target or module.startswith(target + ".")
                referenced = name == target or name.startswith(target + ".")
                if referenced and not inside and (module, target) not in rules.allowed_references:
                    found.add(f"{module} -> {target}")
    return sorted(found)
