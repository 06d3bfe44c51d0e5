"""House rules of the distribution: namespace packages, py.typed, no framework in the core."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INTEGRATIONS = ROOT / "integrations"

NAMESPACE_DIRS = [
    "llama_index",
    "llama_index/embeddings",
    "llama_index/retrievers",
    "llama_index/postprocessor",
    "haystack_integrations",
    "haystack_integrations/components",
    "haystack_integrations/components/embedders",
    "haystack_integrations/components/retrievers",
    "haystack_integrations/components/rankers",
    "haystack_integrations/document_stores",
    "haystack_integrations/common",
]
LEAVES = [
    "llama_index/embeddings/lfm",
    "llama_index/retrievers/lfm",
    "llama_index/postprocessor/lfm_rerank",
    "haystack_integrations/components/embedders/lfm",
    "haystack_integrations/components/retrievers/lfm",
    "haystack_integrations/components/rankers/lfm",
    "haystack_integrations/document_stores/lfm",
    "haystack_integrations/common/lfm",
]


@pytest.mark.parametrize("folder", NAMESPACE_DIRS)
def test_namespace_levels_have_no_init(folder: str) -> None:
    assert (INTEGRATIONS / folder).is_dir()
    assert not (INTEGRATIONS / folder / "__init__.py").exists(), (
        f"{folder} must stay a PEP 420 namespace"
    )


@pytest.mark.parametrize(
    "root",
    [ROOT / "core" / "lfm_retrievers", INTEGRATIONS / "langchain_lfm"]
    + [INTEGRATIONS / leaf for leaf in LEAVES],
)
def test_every_import_root_is_typed(root: Path) -> None:
    assert (root / "__init__.py").exists() and (root / "py.typed").exists()


def test_test_folders_do_not_shadow_namespaces() -> None:
    names = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()}
    assert not names & {
        "llama_index",
        "haystack",
        "haystack_integrations",
        "langchain_lfm",
        "lfm_retrievers",
    }


def test_core_imports_no_framework() -> None:
    code = (
        "import sys, lfm_retrievers, lfm_retrievers.testing, lfm_retrievers.seam;"
        "bad=[m for m in ('langchain_core','llama_index.core','haystack','qdrant_client')"
        " if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S)
    assert match, "README must show the test command after a <!-- test-command --> marker"
    command = match.group(1).strip()
    assert command in ci


def test_wheel_layout(tmp_path: Path) -> None:
    pytest.importorskip("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in NAMESPACE_DIRS:
        assert f"{folder}/__init__.py" not in names
    for leaf in [*LEAVES, "langchain_lfm", "lfm_retrievers"]:
        assert f"{leaf}/__init__.py" in names and f"{leaf}/py.typed" in names
    assert not any(n.startswith(("tests/", "shared/", "core/", "integrations/")) for n in names)
