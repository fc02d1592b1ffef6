"""The documentation site builds with MkDocs and the Material theme, strictly: a page missing from the
navigation, a broken link or anchor, an API object mkdocstrings cannot find, or a schema file the JSON
page cannot include fails the build (.ci/run builds it too)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.needs_mkdocs
def test_the_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "cli" / "index.html").exists()
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "analyse_tokens" in api and "training_memory" in api  # read from the docstrings
