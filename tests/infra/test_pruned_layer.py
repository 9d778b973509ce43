"""The deps layer's pruning (layers/deps/prune.toml, applied by infra/layer_prune.py) removes
nothing a function can need, and strips only libraries whose loader view stays identical.

The slow tests build the API's real layer twice with the repo's own build
(infra.bundling.cached_deps_site): for this machine (x86_64, Python 3.11), where every
scikit-learn estimator module is imported and a skops and a pickled model are loaded and
scored from the pruned tree alone; and for the default target (arm64, python3.14), which
cannot run here, so it gets the checks that do not depend on the CPU (static references,
loader equivalence of every stripped library against a fresh unstripped install).
"""

from __future__ import annotations

import json
import pickle
import platform
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bundling import LOCKS_DIR, cached_deps_site, pip_install_command
from infra.layer_prune import (
    dangling_references,
    is_elf64_le,
    load_rules,
    loader_difference,
    remove_pruned_files,
)

LOCAL_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_every_rule_states_a_reason(tmp_path: Path) -> None:
    rules = load_rules()
    assert "scipy/io" in rules.paths and rules.strip_command[0] == "llvm-strip"
    unexplained = tmp_path / "prune.toml"
    unexplained.write_text('[[paths]]\nnames = ["scipy/io"]\n')
    with pytest.raises(ValueError, match="needs a reason"):
        load_rules(unexplained)


def test_removal_rules_take_extension_modules_and_dedupe_only_identical_libraries(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "numpy/_core/_simd.cpython-314-aarch64-linux-gnu.so": b"x",
            "numpy/_core/_multiarray_umath.cpython-314-aarch64-linux-gnu.so": b"kept",
            "numpy.libs/libgfortran-a.so.5": b"same",
            "scipy.libs/libgfortran-a.so.5": b"same",
            "numpy.libs/libquadmath-b.so.0": b"one build",
            "scipy.libs/libquadmath-b.so.0": b"another build",
            "scipy.libs/libscipy_openblas.so": b"only here",
            "scipy/io/__init__.py": b"",
            "scipy/linalg/__init__.py": b"",
            "scipy-1.17.1.dist-info/RECORD": b"",
            "scipy-1.17.1.dist-info/METADATA": b"Name: scipy",
            "sklearn/conftest.py": b"",
            "sklearn/datasets/__init__.py": b"",
        },
    )
    remove_pruned_files(tmp_path, load_rules())
    remaining = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert remaining == [
        "numpy.libs/libgfortran-a.so.5",
        "numpy.libs/libquadmath-b.so.0",
        "numpy/_core/_multiarray_umath.cpython-314-aarch64-linux-gnu.so",
        "scipy-1.17.1.dist-info/METADATA",
        "scipy.libs/libquadmath-b.so.0",  # not byte-identical: scipy's own copy stays
        "scipy.libs/libscipy_openblas.so",
        "scipy/linalg/__init__.py",
    ]


def _local_library(pattern: str) -> Path:
    import numpy

    site = Path(numpy.__file__).parent.parent
    found = sorted(site.glob(pattern))
    if not found:
        pytest.skip(f"no {pattern} in this venv")
    return found[0]


def test_loader_difference_accepts_section_table_edits_and_rejects_segment_changes() -> None:
    original = _local_library("numpy/_core/_multiarray_umath*.so").read_bytes()
    assert is_elf64_le(original)
    assert loader_difference(original, original) is None
    moved_sections = bytearray(original)
    moved_sections[0x28:0x30] = struct.pack("<Q", 0x1234)  # e_shoff: never read by the loader
    assert loader_difference(original, bytes(moved_sections)) is None
    patched_code = bytearray(original)
    patched_code[0x1000] ^= 0xFF  # inside the first PT_LOAD segment
    assert loader_difference(original, bytes(patched_code)) is not None
    moved_segment = bytearray(original)
    phoff = struct.unpack_from("<Q", original, 0x20)[0]
    p_offset = struct.unpack_from("<Q", original, phoff + 8)[0]
    struct.pack_into("<Q", moved_segment, phoff + 8, p_offset + 8)
    assert "program headers differ" in str(loader_difference(original, bytes(moved_segment)))


@pytest.mark.skipif(shutil.which("llvm-strip") is None, reason="llvm-strip is not installed")
def test_llvm_strip_on_an_auditwheel_library_is_refused_by_the_check(tmp_path: Path) -> None:
    """The failure seen on arm64: llvm-strip moves the segments of patchelf-rewritten libraries
    (numpy.libs/*openblas*). The check catches it, so such a library ships as built."""
    library = _local_library("numpy.libs/libscipy_openblas*.so")
    copy = tmp_path / library.name
    shutil.copyfile(library, copy)
    subprocess.run(["llvm-strip", "--strip-unneeded", str(copy)], check=True)
    assert copy.stat().st_size < library.stat().st_size
    assert loader_difference(library.read_bytes(), copy.read_bytes()) is not None


# --- the real layer ---------------------------------------------------------------------

IMPORT_AND_SCORE = r"""
import importlib, json, pickle, sys
site, modules, skops_model, pickled_model = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path.insert(0, site)
failed = {}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
import numpy, pandas, scipy, sklearn, skops.io
outside = [m.__name__ for m in (numpy, pandas, scipy, sklearn, skops.io) if not m.__file__.startswith(site)]
frame = pandas.DataFrame({"a": [0.1, 2.5, 3.0], "b": [1.0, 0.0, 4.0]})
model = skops.io.load(skops_model, trusted=skops.io.get_untrusted_types(file=skops_model))
with open(pickled_model, "rb") as handle:
    pickled = pickle.load(handle)
print(json.dumps({
    "failed": failed,
    "outside": outside,
    "skops": model.predict(frame).tolist(),
    "pickle": pickled.predict(frame).tolist(),
}))
"""


def estimator_modules() -> list[str]:
    """Every module a skops/pickle model can name for a scikit-learn estimator class."""
    from sklearn.utils import all_estimators

    return sorted({cls.__module__ for _name, cls in all_estimators()})


def demo_models(directory: Path) -> tuple[Path, Path, list[float]]:
    import pandas as pd
    import skops.io
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import QuantileRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    train = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 3.0, 0.0, 2.0, 5.0, 4.0]})
    target = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    # Models whose modules reach into scipy.interpolate/optimize/sparse at import or predict.
    skops_model = make_pipeline(StandardScaler(), SplineTransformer(n_knots=3), QuantileRegressor(alpha=0.0))
    skops_model.fit(train, target)
    pickled_model = HistGradientBoostingRegressor(max_iter=5, min_samples_leaf=1).fit(train, target)
    skops_path, pickle_path = directory / "model.skops", directory / "model.pkl"
    skops.io.dump(skops_model, skops_path)
    pickle_path.write_bytes(pickle.dumps(pickled_model))
    frame = pd.DataFrame({"a": [0.1, 2.5, 3.0], "b": [1.0, 0.0, 4.0]})
    return skops_path, pickle_path, skops_model.predict(frame).tolist() + pickled_model.predict(frame).tolist()


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the host-arch build is x86_64 here")
def test_every_estimator_module_imports_and_models_score_from_the_pruned_layer(tmp_path: Path) -> None:
    site = cached_deps_site(architecture="x86_64", python_version=LOCAL_PYTHON, requirements=LOCKS_DIR / "api.txt")
    assert not (site / "scipy" / "io").exists() and not (site / "sklearn" / "datasets").exists()
    skops_path, pickle_path, expected = demo_models(tmp_path)
    modules = estimator_modules()
    assert len(modules) > 90
    # -I -S: no site-packages, no user paths; only the pruned layer and the stdlib.
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            IMPORT_AND_SCORE,
            str(site),
            json.dumps(modules),
            str(skops_path),
            str(pickle_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["outside"] == []
    assert report["skops"] + report["pickle"] == pytest.approx(expected)


@pytest.mark.slow
@pytest.mark.parametrize(("architecture", "python_version"), [("x86_64", LOCAL_PYTHON), ("arm64", "3.14")])
def test_no_kept_module_refers_to_a_pruned_one(architecture: str, python_version: str) -> None:
    site = cached_deps_site(
        architecture=architecture, python_version=python_version, requirements=LOCKS_DIR / "api.txt"
    )
    assert dangling_references(site) == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("llvm-strip") is None, reason="llvm-strip is not installed")
def test_every_arm64_library_is_loader_identical_to_the_wheels(tmp_path: Path) -> None:
    """The arm64 layer cannot be imported here: compare each of its shared libraries with the
    same file from a fresh, unpruned install of the same wheels."""
    site = cached_deps_site(architecture="arm64", python_version="3.14", requirements=LOCKS_DIR / "api.txt")
    fresh = tmp_path / "fresh"
    command = pip_install_command(LOCKS_DIR / "api.txt", fresh, "arm64", "3.14", exact_set=True)
    subprocess.run(command, check=True, capture_output=True)
    compared = stripped = 0
    for library in site.rglob("*.so*"):
        shipped = library.read_bytes()
        if not is_elf64_le(shipped):
            continue
        original = (fresh / library.relative_to(site)).read_bytes()
        assert loader_difference(original, shipped) is None, library
        compared += 1
        stripped += len(shipped) < len(original)
    assert compared > 200 and stripped > 100
