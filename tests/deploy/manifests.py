"""What the deployment tests read: the Kubernetes manifests, the Compose
file, the Dockerfiles and the tools that check them."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from landform.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_DIR = DEPLOY / "compose"
DOCKERFILE = ROOT / "Dockerfile"
PGBOUNCER_DOCKERFILE = COMPOSE_DIR / "pgbouncer" / "Dockerfile"
# The spec beside this checkout (the team's layout), else the team's shared
# folder (a clone made elsewhere, as CI's is).
SPEC = next(
    (
        folder / "spec" / "performance-sla.md"
        for folder in (ROOT.parent / "shared", Path("/work/shared"))
        if (folder / "spec" / "performance-sla.md").exists()
    ),
    ROOT.parent / "shared" / "spec" / "performance-sla.md",
)

# Every LANDFORM_* name a manifest may use: one per Settings field.
SETTING_NAMES = {f"LANDFORM_{name.upper()}" for name in Settings.model_fields}
LANDFORM_NAME = re.compile(r"\bLANDFORM_[A-Z0-9_]+\b")

REQUIRE_TOOLS = os.environ.get("LANDFORM_TEST_REQUIRE_SERVICES") == "1"


def tool(name: str, install: str, *, ci_installs: bool = True) -> str:
    """The path of a command-line tool (the venv's bin first); skipped when
    missing, except in CI, where it must be there if CI installs it."""
    found = shutil.which(
        name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        message = f"{name} is not installed ({install})"
        if REQUIRE_TOOLS and ci_installs:
            pytest.fail(message)
        pytest.skip(message)
    return found


def kubernetes_files() -> list[Path]:
    """The manifests kustomization.yaml applies (extras/ are not manifests)."""
    return sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")


def kubernetes_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, document)
        for path in kubernetes_files()
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def resource(kind: str, name: str) -> dict[str, Any]:
    found = [
        document
        for _, document in kubernetes_documents()
        if document["kind"] == kind and document["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def landform_names(text: str) -> set[str]:
    return set(LANDFORM_NAME.findall(text))
