"""Shared fixtures.

Real public files live in ``../shared/data`` beside the repository (override with the
environment variable ``RECASTKIT_TESTDATA``). Tests reach them only through the
``shared_data`` / ``shared_file`` fixtures, which skip with a clear reason when absent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the shared test data is expected (env ``RECASTKIT_TESTDATA`` wins)."""
    env = os.environ.get("RECASTKIT_TESTDATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; skips the test when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(
            f"shared test data not found at {path} (set RECASTKIT_TESTDATA to the folder "
            "holding root/, xsec/ and likelihoods/)"
        )
    return path


@pytest.fixture(scope="session")
def shared_file(shared_data: Path) -> Callable[[str], Path]:
    """Return a function mapping a path relative to the shared data folder to a file.

    The returned function skips the test when that file is absent.
    """

    def get(relpath: str) -> Path:
        path = shared_data / relpath
        if not path.exists():
            pytest.skip(f"shared test file {relpath} not found under {shared_data}")
        return path

    return get


@pytest.fixture(autouse=True)
def _isolated_catalog(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's real catalog: point RECASTKIT_CATALOG at a temp file."""
    path = tmp_path_factory.mktemp("catalog") / "catalog.sqlite"
    monkeypatch.setenv("RECASTKIT_CATALOG", str(path))
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def synthetic_grid(tmp_path: Path) -> Path:
    """A folder with BkgOnly.json and patch.sig_<m1>_<m2>.json (12 points)."""
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gridfactory import synthetic_grid_workspace

    bkg, patches = synthetic_grid_workspace()
    folder = tmp_path / "grid"
    folder.mkdir()
    (folder / "BkgOnly.json").write_text(json.dumps(bkg))
    for name, patch in patches.items():
        (folder / f"patch.{name}.json").write_text(json.dumps(patch))
    return folder
