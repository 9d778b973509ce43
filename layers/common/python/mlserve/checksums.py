"""sha256 of every file of a model version, recorded at staging and verified before loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlserve.errors import ChecksumMismatchError

CHECKSUMS_FILE = "checksums.json"
# The model cache's own marker file in a downloaded version directory (see mlserve.store):
# not part of the model, never recorded or verified.
CACHE_MARKER = ".mlserve-cache"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compute_checksums(model_dir: Path) -> dict[str, str]:
    """Relative POSIX path -> sha256 for every file except checksums.json itself (and the
    cache's marker file at the top)."""
    return {
        path.relative_to(model_dir).as_posix(): sha256_file(path)
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS_FILE and path != model_dir / CACHE_MARKER
    }


def verify_checksums(model_dir: Path, expected: dict[str, str]) -> None:
    """Raise unless every expected file exists with its recorded hash and no file was added."""
    if not expected:
        raise ChecksumMismatchError("no checksums recorded: refusing to load an unverified model")
    actual = compute_checksums(model_dir)
    problems = []
    for rel, digest in sorted(expected.items()):
        if rel not in actual:
            problems.append(f"{rel}: missing")
        elif actual[rel] != digest:
            problems.append(f"{rel}: sha256 {actual[rel][:12]}… != recorded {digest[:12]}…")
    problems.extend(f"{rel}: not in the recorded checksums" for rel in sorted(set(actual) - set(expected)))
    if problems:
        raise ChecksumMismatchError(
            "model files do not match the checksums recorded at staging: " + "; ".join(problems)
        )
