"""Build the ETL worker's Lambda deployment package, reproducibly and cached by content hash.

The package holds ``analytics_platform/etl`` plus pinned third-party wheels for python3.11 on Amazon
Linux 2 (glibc 2.26, so manylinux2014 wheels). boto3 is not bundled: the Lambda runtime provides it.
The zip is deterministic (sorted entries, fixed timestamps and modes), so the same inputs give the same
bytes and the same ``source_code_hash``; a rebuild happens only when an input changes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: Third-party packages of the worker; the versions are the newest with manylinux2014 wheels.
LAMBDA_REQUIREMENTS: tuple[str, ...] = ("duckdb==1.2.2", "aws-lambda-powertools==3.37.0")
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
PYTHON_VERSION = "3.11"
MAX_ZIP_BYTES = 50 * 1024 * 1024
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
PACKAGE_ROOT = Path(__file__).resolve().parent
EXCLUDED_PARTS = {"__pycache__", "tests", "test"}


class PackagingError(RuntimeError):
    """The deployment package could not be built."""


@dataclass(frozen=True)
class LambdaPackage:
    """A built package: the zip and its base64 SHA-256 (Lambda's ``CodeSha256``)."""

    path: Path
    sha256_b64: str
    size_bytes: int


def _source_files() -> list[tuple[Path, str]]:
    """The worker's own source files with their archive names."""
    files = [(PACKAGE_ROOT / "__init__.py", "analytics_platform/__init__.py")]
    for path in sorted((PACKAGE_ROOT / "etl").rglob("*.py")):
        relative = path.relative_to(PACKAGE_ROOT.parent).as_posix()
        files.append((path, relative))
    return files


def input_digest(architecture: str) -> str:
    """Hash of everything that goes into the package: pins, platform and worker source."""
    digest = hashlib.sha256()
    digest.update(f"{PLATFORMS[architecture]}|{PYTHON_VERSION}|{'|'.join(LAMBDA_REQUIREMENTS)}".encode())
    for path, name in _source_files():
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _install_dependencies(target: Path, architecture: str) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--target", str(target), "--platform", PLATFORMS[architecture],
        "--implementation", "cp", "--python-version", PYTHON_VERSION,
        "--only-binary=:all:", "--no-compile", *LAMBDA_REQUIREMENTS,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackagingError(
            f"pip could not fetch the worker's dependencies for {PLATFORMS[architecture]}:\n{result.stderr}"
        )


def _write_zip(zip_path: Path, site: Path) -> None:
    entries: list[tuple[str, Path]] = []
    for path in site.rglob("*"):
        if path.is_file() and not EXCLUDED_PARTS.intersection(path.relative_to(site).parts[:-1]):
            if path.suffix == ".pyc":
                continue
            entries.append((path.relative_to(site).as_posix(), path))
    entries += [(name, path) for path, name in _source_files()]
    entries.sort(key=lambda item: item[0])
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            mode = 0o755 if os.access(path, os.X_OK) and path.suffix == ".so" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)


def sha256_b64(path: Path) -> str:
    """Base64 SHA-256 of a file, as Lambda reports ``CodeSha256``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def build_package(architecture: str = "x86_64", cache_dir: Path | None = None) -> LambdaPackage:
    """Return the cached package for these inputs, building it first if needed."""
    if architecture not in PLATFORMS:
        raise PackagingError(f"unsupported architecture {architecture!r}; use one of {sorted(PLATFORMS)}")
    cache = (cache_dir or Path(".tap/build")).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    zip_path = cache / f"etl-worker-{architecture}-{input_digest(architecture)[:20]}.zip"
    if not zip_path.exists():
        with tempfile.TemporaryDirectory(prefix="tap-package-") as work:
            site = Path(work) / "site"
            _install_dependencies(site, architecture)
            partial = Path(work) / "package.zip"
            _write_zip(partial, site)
            size = partial.stat().st_size
            if size > MAX_ZIP_BYTES:
                raise PackagingError(f"package is {size / 2**20:.1f} MiB; Lambda's zip upload limit is 50 MiB")
            shutil.move(str(partial), zip_path)
    return LambdaPackage(zip_path, sha256_b64(zip_path), zip_path.stat().st_size)
