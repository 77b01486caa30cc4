"""deploy/kubernetes/: every manifest against the Kubernetes API's schemas
(kubernetes-validate's, offline, strict: unknown fields are errors), the
VerticalPodAutoscaler against its CRD's structure, the kustomization as
kubectl renders it, and the promises the manifests make to each other, to
the application and to the spec."""

from __future__ import annotations

import configparser
import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate
from prometheus_client.parser import text_string_to_metric_families

from landform.ops.prometheus import exposition
from landform.settings import Settings
from tests.conftest import assert_error
from tests.deploy.manifests import (
    COMPOSE_DIR,
    KUBERNETES,
    SETTING_NAMES,
    SPEC,
    kubernetes_documents,
    kubernetes_files,
    landform_names,
    resource,
    tool,
)

# The oldest Kubernetes still maintained upstream when this was written, and
# the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.32", kubernetes_validate.latest_version()]
VPA_SCHEMA = Path(__file__).with_name("verticalpodautoscaler-v1.schema.json")
NOT_IN_THE_KUBERNETES_SCHEMAS = {("autoscaling.k8s.io/v1", "VerticalPodAutoscaler")}

# spec/performance-sla.md, "Horizontal Scaling Strategy" (checked against the
# spec's text below when shared/ is beside the checkout).
SPEC_HPA = {"min": 5, "max": 100, "cpu": 70, "memory": 80, "requests_per_second": "1000"}
SPEC_VPA = {
    "updateMode": "Auto",
    "maxAllowed": {"cpu": 4, "memory": "8Gi"},
    "minAllowed": {"cpu": "100m", "memory": "128Mi"},
}
SPEC_PGBOUNCER = {
    "pool_mode": "session",
    "listen_port": "6432",
    "listen_addr": "*",
    "auth_type": "md5",
    "max_client_conn": "1000",
    "default_pool_size": "100",
    "min_pool_size": "10",
    "reserve_pool_size": "10",
    "reserve_pool_timeout": "5",
    "server_idle_timeout": "600",
    "server_lifetime": "3600",
    "server_connect_timeout": "15",
    "query_timeout": "60",
}


def validate(document: dict[str, Any], version: str) -> None:
    if (document["apiVersion"], document["kind"]) in NOT_IN_THE_KUBERNETES_SCHEMAS:
        validate_vpa(document)
    else:
        kubernetes_validate.validate(document, version, strict=True)


def validate_vpa(document: dict[str, Any]) -> None:
    """The VPA is a custom resource: kubernetes-validate has no schema for
    it (its CLI only warns). tests/deploy/verticalpodautoscaler-v1.schema.json
    is the v1 CRD's structural schema for spec (fields, types, enums,
    required), written out by hand from the autoscaler project's CRD, with
    unknown fields refused as the API server's strict field validation
    does; metadata is checked against Kubernetes' own ObjectMeta schema."""
    schema = json.loads(VPA_SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    object_meta = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": document["metadata"],
    }
    kubernetes_validate.validate(object_meta, KUBERNETES_VERSIONS[-1], strict=True)


def web_deployment() -> dict[str, Any]:
    return resource("Deployment", "landform")


def web_container() -> dict[str, Any]:
    (container,) = web_deployment()["spec"]["template"]["spec"]["containers"]
    return container


def config_data() -> dict[str, str]:
    data: dict[str, str] = resource("ConfigMap", "landform-config")["data"]
    return data


# -- schemas -----------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", kubernetes_files(), ids=lambda path: path.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    documents = [document for document in yaml.safe_load_all(path.read_text()) if document]
    assert documents, f"{path.name} holds no resource"
    for document in documents:
        validate(document, version)


def test_the_validation_refuses_what_the_api_server_would() -> None:
    """The checks have teeth: a misspelt field, a wrong type, a missing
    required field and a bad enum are each an error."""
    deployment = web_deployment()
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "forty"
    no_selector = copy.deepcopy(deployment)
    del no_selector["spec"]["selector"]
    for broken in (misspelt, wrong_type, no_selector):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)

    vpa = resource("VerticalPodAutoscaler", "landform")
    bad_mode = copy.deepcopy(vpa)
    bad_mode["spec"]["updatePolicy"]["updateMode"] = "Sometimes"
    unknown_field = copy.deepcopy(vpa)
    unknown_field["spec"]["resourcePolicy"]["containerPolicies"][0]["maxAlowed"] = {}
    no_target = copy.deepcopy(vpa)
    del no_target["spec"]["targetRef"]
    bad_quantity = copy.deepcopy(vpa)
    bad_quantity["spec"]["resourcePolicy"]["containerPolicies"][0]["maxAllowed"]["cpu"] = "4 cores"
    bad_name = copy.deepcopy(vpa)
    bad_name["metadata"]["name"] = ["landform"]
    for broken in (bad_mode, unknown_field, no_target, bad_quantity, bad_name):
        with pytest.raises(jsonschema.ValidationError):
            validate_vpa(broken)


def test_the_kustomization_applies_every_manifest_and_renders(tmp_path: Path) -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in kubernetes_files())

    # Debian has no current kubectl to install; the machines here carry one.
    kubectl = tool("kubectl", "kubectl renders the kustomization offline", ci_installs=False)
    rendered = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, check=True
    ).stdout
    documents = [document for document in yaml.safe_load_all(rendered) if document]
    assert len(documents) == len(kubernetes_documents())
    for document in documents:
        validate(document, KUBERNETES_VERSIONS[-1])
        assert document["metadata"]["labels"]["app.kubernetes.io/part-of"] == "landform"
    images = {
        container["image"]
        for document in documents
        if document["kind"] in ("Deployment", "Job")
        for container in document["spec"]["template"]["spec"]["containers"]
    }
    assert images == {
        "registry.example.com/landform:0.1.0",
        "registry.example.com/landform-pgbouncer:1.18",
    }
    # Labels are added to metadata, never to the selectors the HPA and the
    # Service rely on.
    deployment = next(
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "landform"
    )
    assert "app.kubernetes.io/part-of" not in deployment["spec"]["selector"]["matchLabels"]


# -- the application's side -------------------------------------------------


def test_every_landform_variable_is_a_real_setting() -> None:
    named: set[str] = set()
    for path in [*kubernetes_files(), *KUBERNETES.glob("extras/*.yaml")]:
        named |= landform_names(path.read_text())
    assert named, "the manifests name no LANDFORM_* setting"
    assert named - SETTING_NAMES == set()


def test_the_config_map_and_secret_make_valid_settings() -> None:
    """What the pods' environment holds parses: a wrong type or value would
    stop every pod at start."""
    environment = {
        **config_data(),
        **resource("Secret", "landform-secrets")["stringData"],
    }
    # Through the environment, as a pod reads them (lists are comma-separated
    # there, which keyword arguments would not test).
    with mock.patch.dict(os.environ, environment):
        settings = Settings()
    assert settings.env == "production"
    assert settings.primary_database_url.startswith("postgresql+asyncpg://")
    assert settings.database_replica_urls and all(
        url.startswith("postgresql+asyncpg://") and url.endswith("/landform_read")
        for url in settings.database_replica_urls
    )
    assert settings.storage_url.startswith("s3://")
    assert not settings.should_migrate_on_start  # the Job migrates
    for value in resource("Secret", "landform-secrets")["stringData"].values():
        assert "EXAMPLE-ONLY" in value or value == "landform", value


def probe_networks() -> dict[str, str]:
    return {
        "ops_open_networks": config_data()["LANDFORM_OPS_OPEN_NETWORKS"],
        "trusted_proxies": config_data()["LANDFORM_TRUSTED_PROXIES"],
    }


@pytest.mark.parametrize("settings_update", [probe_networks()], indirect=True)
async def test_the_probes_answer_a_kubelet_without_a_token(app: Any) -> None:
    """The probe paths are the app's, and with the ConfigMap's networks a
    kubelet (a node address, no token) gets 200 from both; a visitor from
    the internet gets 401 from the same paths, directly or through the
    ingress."""
    container = web_container()
    paths = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for kubelet in ("10.0.3.1", "172.20.0.1", "192.168.49.2"):
        transport = httpx.ASGITransport(app=app, client=(kubelet, 51000))
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.3.7:8000") as c:
            assert (await c.get("/healthz")).json()["status"] == "ok"
            ready = await c.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.3.7:8000") as c:
        for path in set(paths.values()):
            assert_error(await c.get(path), 401)
    # The same visitor through the ingress (a private peer, a trusted proxy
    # that says who it forwards for) is refused too.
    transport = httpx.ASGITransport(app=app, client=("10.42.0.12", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.3.7:8000") as c:
        forwarded = {"X-Forwarded-For": "10.9.9.9, 203.0.113.9"}
        for path in set(paths.values()):
            assert_error(await c.get(path, headers=forwarded), 401)
    port = container["ports"][0]
    assert container["livenessProbe"]["httpGet"]["port"] == port["name"] == "http"
    assert port["containerPort"] == 8000
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]


def test_termination_grace_covers_the_pause_and_the_drain() -> None:
    pod = web_deployment()["spec"]["template"]["spec"]
    pause = web_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    pause_seconds = int(pause[1])
    grace = int(
        config_data().get("LANDFORM_SHUTDOWN_GRACE_SECONDS", Settings().shutdown_grace_seconds)
    )
    assert Settings(shutdown_grace_seconds=grace).shutdown_grace_seconds == grace
    assert pod["terminationGracePeriodSeconds"] > pause_seconds + grace


def test_the_web_pods_run_unprivileged_on_a_read_only_root() -> None:
    pod = web_deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    security = web_container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # Where it writes: the data dir (spools, the workers' sockets) and /tmp.
    mounts = {m["mountPath"]: m["name"] for m in web_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == {"/var/lib/landform", "/tmp"}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    resources = web_container()["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


# -- the manifests' promises to each other ------------------------------------


def test_the_service_and_the_budget_select_the_web_pods_only() -> None:
    deployment = web_deployment()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    service = resource("Service", "landform")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    budget = resource("PodDisruptionBudget", "landform")
    assert budget["spec"]["selector"]["matchLabels"] == selector
    # The migration Job's pods share the name label but not the component:
    # neither the Service nor the budget counts them.
    job_labels = resource("Job", "landform-migrate")["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items()


def test_the_hpa_is_the_specs() -> None:
    hpa = resource("HorizontalPodAutoscaler", "landform")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "landform",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (SPEC_HPA["min"], SPEC_HPA["max"])
    by_kind = {(m["type"], m.get("resource", {}).get("name")): m for m in hpa["metrics"]}
    assert by_kind[("Resource", "cpu")]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": SPEC_HPA["cpu"],
    }
    assert by_kind[("Resource", "memory")]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": SPEC_HPA["memory"],
    }
    pods = by_kind[("Pods", None)]["pods"]
    assert pods["target"] == {
        "type": "AverageValue",
        "averageValue": SPEC_HPA["requests_per_second"],
    }
    assert len(hpa["metrics"]) == 3
    # Utilization is relative to requests: the container must have them.
    assert set(web_container()["resources"]["requests"]) == {"cpu", "memory"}
    # The Deployment leaves its replica count to the HPA.
    assert "replicas" not in web_deployment()["spec"]


def test_the_requests_metric_comes_from_a_counter_landform_exports() -> None:
    """The adapter rule reads landform_requests_total and serves the name
    the HPA asks for; the counter is one the exposition writes."""
    hpa = resource("HorizontalPodAutoscaler", "landform")["spec"]
    metric = next(m for m in hpa["metrics"] if m["type"] == "Pods")["pods"]["metric"]["name"]
    (rule,) = yaml.safe_load((KUBERNETES / "extras" / "prometheus-adapter-rules.yaml").read_text())[
        "rules"
    ]["custom"]
    assert rule["name"]["as"] == metric
    series = re.match(r"(\w+)\{", rule["seriesQuery"])
    assert series is not None and series.group(1) == "landform_requests_total"
    # A counter family named landform_requests is exposed as *_total (a
    # live server's /metrics is read in test_dockerfile.py).
    families = {family.name for family in text_string_to_metric_families(exposition([]).decode())}
    assert "landform_requests" in families


def test_the_vpa_is_the_specs() -> None:
    vpa = resource("VerticalPodAutoscaler", "landform")["spec"]
    assert vpa["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "landform"}
    assert vpa["updatePolicy"]["updateMode"] == SPEC_VPA["updateMode"]
    (policy,) = vpa["resourcePolicy"]["containerPolicies"]
    assert policy["containerName"] == web_container()["name"]
    assert policy["maxAllowed"] == SPEC_VPA["maxAllowed"]
    assert policy["minAllowed"] == SPEC_VPA["minAllowed"]


def test_the_numbers_above_are_the_specs_own() -> None:
    if not SPEC.exists():
        pytest.skip(f"the spec is not beside this checkout ({SPEC})")
    text = SPEC.read_text()
    for fragment in (
        f"minReplicas: {SPEC_HPA['min']}",
        f"maxReplicas: {SPEC_HPA['max']}",
        f"averageUtilization: {SPEC_HPA['cpu']}",
        f"averageUtilization: {SPEC_HPA['memory']}",
        f'value: "{SPEC_HPA["requests_per_second"]}"',
        f'updateMode: "{SPEC_VPA["updateMode"]}"',
        f"cpu: {SPEC_VPA['maxAllowed']['cpu']}",
        f"memory: {SPEC_VPA['maxAllowed']['memory']}",
        f"cpu: {SPEC_VPA['minAllowed']['cpu']}",
        f"memory: {SPEC_VPA['minAllowed']['memory']}",
    ):
        assert fragment in text, fragment
    for key, value in SPEC_PGBOUNCER.items():
        assert re.search(rf"^{key} = {re.escape(value)}$", text, re.MULTILINE), key


def test_migration_job_upgrades_the_schema_straight_on_the_primary() -> None:
    job = resource("Job", "landform-migrate")["spec"]
    (container,) = job["template"]["spec"]["containers"]
    assert container["args"] == ["db", "upgrade"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert container["image"] == web_container()["image"]
    sources = [
        source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source
    ]
    assert sources == ["landform-migration"]
    url = resource("Secret", "landform-migration")["stringData"]["LANDFORM_DATABASE_URL"]
    assert "pgbouncer" not in url and ":5432/" in url
    timeout = {e["name"]: e["value"] for e in container["env"]}[
        "LANDFORM_DATABASE_STATEMENT_TIMEOUT"
    ]
    assert float(timeout) > Settings().database_statement_timeout


def test_pgbouncer_is_configured_as_the_spec_says_in_both_deployments() -> None:
    def sections(text: str) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(
            delimiters=("=",), comment_prefixes=(";", "#"), interpolation=None
        )
        parser.read_string(text)
        return parser

    in_kubernetes = sections(resource("ConfigMap", "pgbouncer-config")["data"]["pgbouncer.ini"])
    in_compose = sections((COMPOSE_DIR / "pgbouncer" / "pgbouncer.ini").read_text())
    assert dict(in_kubernetes["pgbouncer"]) == dict(in_compose["pgbouncer"])
    settings = dict(in_kubernetes["pgbouncer"])
    assert {key: settings[key] for key in SPEC_PGBOUNCER} == SPEC_PGBOUNCER
    assert settings["ignore_startup_parameters"] == "statement_timeout"
    assert (
        set(in_kubernetes["databases"])
        == set(in_compose["databases"])
        == {"landform", "landform_read"}
    )

    # Landform's URLs name the databases PgBouncer serves, on its port.
    secret = resource("Secret", "landform-secrets")["stringData"]
    assert secret["LANDFORM_DATABASE_URL"].endswith(
        f"@pgbouncer:{settings['listen_port']}/landform"
    )
    assert secret["LANDFORM_DATABASE_REPLICA_URLS"].endswith(
        f"@pgbouncer:{settings['listen_port']}/landform_read"
    )
    service = resource("Service", "pgbouncer")["spec"]
    assert service["ports"][0]["port"] == int(settings["listen_port"])
    deployment = resource("Deployment", "pgbouncer")["spec"]
    assert service["selector"] == deployment["selector"]["matchLabels"]
    (container,) = deployment["template"]["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == int(settings["listen_port"])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert Path(settings["auth_file"]).parent.as_posix() in mounts  # written at start
