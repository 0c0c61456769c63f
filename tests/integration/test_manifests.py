"""Offline checks of the deployment files: Procfile, app.json, Dockerfile, k8s/.

Nothing here talks to a cluster, Heroku or Docker. The Kubernetes manifests are
assembled the way kustomize does it (a small Python version, enough for this base)
and validated against the pinned Kubernetes schemas that kubernetes-validate ships;
when ``kubectl`` is on PATH its own ``kubectl kustomize`` is run too, and must agree.
The rest pins the choices that must not silently regress: probes, limits, the locked
down pods, the always-on scheduler worker, its grace period, and one source of truth
for the configuration (``service.settings.Settings``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from service.errors import ConfigError
from service.settings import Settings
from workers.queues import ANALYSIS_JOB_TIMEOUT_S, DELIVERY_JOB_TIMEOUT_S, QUEUES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
#: The oldest Kubernetes the manifests promise to work on, and the newest schemas shipped.
K8S_VERSIONS = ("1.30.0", "1.37.0")
APP_LABEL = ("app.kubernetes.io/name", "callwatch")
WORKLOADS = ("Deployment",)
WEB, WORKER, WORKER_EXTRA = "callwatch-web", "callwatch-worker", "callwatch-worker-extra"
#: The optional components, every one enabled in the ``docs`` fixture.
COMPONENTS = ("keda", "prometheus")
#: API groups of custom resources (no schema in kubernetes-validate; checked structurally).
CRD_GROUPS = ("keda.sh/", "monitoring.coreos.com/")

Doc = dict[str, Any]

# --- what Settings says -------------------------------------------------------------

SETTINGS_FIELDS = dataclasses.fields(Settings)
SETTING_VARS = {f.name.upper() for f in SETTINGS_FIELDS}
#: Secrets are exactly the fields whose repr Settings hides.
SECRET_VARS = {f.name.upper() for f in SETTINGS_FIELDS if not f.repr}
REQUIRED_VARS = {f.name.upper() for f in SETTINGS_FIELDS
                 if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
DEPLOYMENT_ONLY_VARS = {"HOST", "WEB_CONCURRENCY", "WEB_WORKER_CLASS", "WEB_CONNECTIONS", "WEB_THREADS"}
VALID_SID = "AC" + "0" * 32


# --- a small kustomize --------------------------------------------------------------

def load_docs(path: Path) -> list[Doc]:
    """Every non-empty YAML document in a file."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def read_env_file(path: Path) -> dict[str, str]:
    """A kustomize ``envs`` file: KEY=VALUE lines, # comments and blank lines skipped."""
    pairs: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert key not in pairs, f"{path.name}: {key} twice"
            pairs[key] = value
    return pairs


def kustomization(directory: Path) -> Doc:
    return load_docs(directory / "kustomization.yaml")[0]


def assemble(directory: Path = K8S, *, components: tuple[str, ...] = ()) -> list[Doc]:
    """The objects ``kubectl kustomize`` builds from the base (plus ``components``).

    Covers what this base uses: resources, components, an env-file ConfigMap
    generator (without the hash suffix), namespace, labels on objects and pod
    templates, and image overrides.
    """
    spec = kustomization(directory)
    docs: list[Doc] = []
    for name in spec.get("resources", []):
        docs.extend(load_docs(directory / name))
    for name in (*spec.get("components", []), *components):
        component = kustomization(directory / name)
        assert component["kind"] == "Component"
        for resource in component.get("resources", []):
            docs.extend(load_docs(directory / name / resource))
    for generator in spec.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for env in generator.get("envs", []):
            data.update(read_env_file(directory / env))
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": generator["name"]}, "data": data})
    images = {image["name"]: f"{image['newName']}:{image['newTag']}"
              for image in spec.get("images", [])}
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        if "namespace" in spec:
            meta["namespace"] = spec["namespace"]
        for rule in spec.get("labels", []):
            # Selectors are written out in the files: kustomize's includeSelectors would
            # also rewrite the NetworkPolicy's kube-dns selector and break DNS.
            assert rule.get("includeSelectors") is False, "labels must not touch selectors"
            meta.setdefault("labels", {}).update(rule["pairs"])
            if rule.get("includeTemplates") and "template" in doc.get("spec", {}):
                template = doc["spec"]["template"].setdefault("metadata", {})
                template.setdefault("labels", {}).update(rule["pairs"])
        for container in pod_spec(doc).get("containers", []):
            container["image"] = images.get(container["image"], container["image"])
    return docs


def pod_spec(doc: Doc) -> Doc:
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(doc: Doc) -> Doc:
    (only,) = pod_spec(doc)["containers"]
    return only


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    """The base with every optional component enabled: every object we ship."""
    return assemble(components=COMPONENTS)


@pytest.fixture(scope="module")
def deployments(docs: list[Doc]) -> dict[str, Doc]:
    return by_kind(docs, "Deployment")


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def app_json() -> Doc:
    return json.loads((ROOT / "app.json").read_text(encoding="utf-8"))


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


# --- kustomize structure ------------------------------------------------------------

def test_every_listed_file_exists_and_no_manifest_is_left_out() -> None:
    """kustomization.yaml lists existing files, and every manifest is listed or an example."""
    for directory in (K8S, *(K8S / name for name in COMPONENTS)):
        listed = set(kustomization(directory).get("resources", []))
        for name in listed:
            assert (directory / name).is_file(), f"{directory.name}/{name} is missing"
        on_disk = {p.name for p in directory.glob("*.yaml")}
        assert on_disk - listed <= {"kustomization.yaml", "secret.example.yaml"}
        assert "kustomization.yaml" in on_disk


def test_object_names_are_unique(docs: list[Doc]) -> None:
    """No two objects share a kind and name (kustomize would refuse the build)."""
    keys = [(doc["kind"], doc["metadata"]["name"]) for doc in docs]
    assert len(keys) == len(set(keys))


def test_components_are_off_in_the_base() -> None:
    """The base applies on a cluster without KEDA or the Prometheus Operator: no custom
    resource unless a component is enabled."""
    assert not [doc for doc in assemble() if doc["apiVersion"].startswith(CRD_GROUPS)]
    assert "components" not in kustomization(K8S)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(docs: list[Doc], version: str) -> None:
    """Every built-in object, and each example Secret, is valid (strict) for Kubernetes."""
    examples = [doc for path in K8S.rglob("secret.example.yaml") for doc in load_docs(path)]
    checked = 0
    for doc in [*docs, *examples]:
        if doc["apiVersion"].startswith(CRD_GROUPS):
            continue  # custom resources: checked structurally (test_scaled_object_*, scrape)
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 10


def test_labels_reach_every_object_and_pod_template(docs: list[Doc]) -> None:
    """app.kubernetes.io/name=callwatch is on every object and every pod template."""
    key, value = APP_LABEL
    for doc in docs:
        assert doc["metadata"]["labels"][key] == value, doc["metadata"]["name"]
        assert doc["metadata"]["namespace"] == "callwatch"
    for doc in by_kind(docs, "Deployment").values():
        assert doc["spec"]["template"]["metadata"]["labels"][key] == value


def test_selectors_name_the_app_and_match_their_pods(docs: list[Doc]) -> None:
    """Every selector includes the app label and selects pods that some Deployment makes."""
    key, value = APP_LABEL
    deployments = by_kind(docs, "Deployment").values()
    templates = [d["spec"]["template"]["metadata"]["labels"] for d in deployments]

    def selects_some_pods(selector: dict[str, str]) -> bool:
        return any(selector.items() <= labels.items() for labels in templates)

    selectors = [d["spec"]["selector"]["matchLabels"]
                 for d in docs if d["kind"] in ("Deployment", "PodDisruptionBudget")]
    selectors += [d["spec"]["selector"] for d in docs if d["kind"] == "Service"]
    selectors += [d["spec"]["podSelector"]["matchLabels"]
                  for d in docs if d["kind"] == "NetworkPolicy"]
    assert len(selectors) >= 7
    for selector in selectors:
        assert selector.get(key) == value, selector
        assert selects_some_pods(selector), selector
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def kubectl_or_skip() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    return kubectl


def test_kubectl_kustomize_builds_the_same_objects(tmp_path: Path) -> None:
    """kubectl's own kustomize builds the base, and the base plus each component and all of
    them, like our assembly."""
    kubectl = kubectl_or_skip()
    builds: list[tuple[Path, tuple[str, ...]]] = [(K8S, ())]
    for components in (*((name,) for name in COMPONENTS), COMPONENTS):
        directory = tmp_path / "-".join(components)
        shutil.copytree(K8S, directory)
        spec = directory / "kustomization.yaml"
        listed = "".join(f"  - {name}\n" for name in components)
        spec.write_text(spec.read_text(encoding="utf-8") + f"\ncomponents:\n{listed}",
                        encoding="utf-8")
        builds.append((directory, components))
    for directory, components in builds:
        out = subprocess.run([kubectl, "kustomize", str(directory)], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        built = [doc for doc in yaml.safe_load_all(out) if doc]
        (config_name,) = by_kind(built, "ConfigMap")
        assert config_name.startswith("callwatch-config-")  # the content hash suffix
        # Ours leaves the generated name unhashed; otherwise every object must be equal.
        unhashed = json.loads(json.dumps(built).replace(config_name, "callwatch-config"))
        key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
        assert sorted(unhashed, key=key) == sorted(assemble(components=components), key=key)


#: Every optional component, the routing file's included (its patches are kustomize's own
#: work, so only kubectl builds it).
ALL_COMPONENTS = (*COMPONENTS, "routing")
WORKER_COMMAND = ["python", "-m", "workers.worker"]


def component_orders() -> list[tuple[str, ...]]:
    """Every combination of the components, each in every order: 16 builds."""
    return [order for size in range(len(ALL_COMPONENTS) + 1)
            for combination in itertools.combinations(ALL_COMPONENTS, size)
            for order in itertools.permutations(combination)]


#: An operator's overlay, as k8s/README.md describes it: the base as a resource, the
#: components by path, and the namespace and labels set again (a Kustomization's
#: transformers reach only what it lists, so the base's do not reach components' objects).
OVERLAY = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: callwatch
labels:
  - pairs: {"app.kubernetes.io/name": callwatch, "app.kubernetes.io/part-of": callwatch}
    includeSelectors: false
    includeTemplates: true
resources:
  - ../callwatch/k8s
"""


def kubectl_build(kubectl: str, folder: Path, how: str, components: tuple[str, ...]) -> list[Doc]:
    """``kubectl kustomize`` of ``components`` enabled ``how``: "base" lists them in a copy of
    the base's kustomization.yaml, "overlay" in an overlay of the base, both in ``folder``."""
    base = folder / "callwatch" / "k8s"
    shutil.copytree(K8S, base)
    if how == "base":
        built, prefix, text = base, "", (K8S / "kustomization.yaml").read_text(encoding="utf-8")
    else:
        built, prefix, text = folder / "overlay", "../callwatch/k8s/", OVERLAY
        built.mkdir()
    if components:
        text += "\ncomponents:\n" + "".join(f"  - {prefix}{name}\n" for name in components)
    (built / "kustomization.yaml").write_text(text, encoding="utf-8")
    out = subprocess.run([kubectl, "kustomize", str(built)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


Build = tuple[str, tuple[str, ...]]


@pytest.fixture(scope="module")
def every_build(tmp_path_factory: pytest.TempPathFactory) -> dict[Build, list[Doc]]:
    """kubectl's build of each combination of components, in each order, enabled in the base
    and from an overlay: ``{(how, components): objects}``."""
    kubectl = kubectl_or_skip()
    root = tmp_path_factory.mktemp("k8s-builds")
    return {(how, order): kubectl_build(kubectl, root / f"{how}-{'-'.join(order)}", how, order)
            for how in ("base", "overlay") for order in component_orders()}


def test_every_component_combination_builds_and_validates(
        every_build: dict[Build, list[Doc]]) -> None:
    """Each combination of keda, prometheus and routing, in any order, in the base or from an
    overlay, builds with kubectl and every built-in object is valid (strict) for Kubernetes
    1.30 and 1.37, in the namespace, labelled, and referring only to ConfigMaps the build
    holds."""
    assert len(every_build) == 2 * 16
    seen: set[str] = set()
    for (how, order), docs in every_build.items():
        config_maps = set(by_kind(docs, "ConfigMap"))
        assert len(config_maps) == 1 + ("routing" in order), (how, order)
        for doc in docs:
            where = (how, order, doc["kind"], doc["metadata"]["name"])
            assert doc["metadata"]["namespace"] == "callwatch", where
            assert doc["metadata"]["labels"][APP_LABEL[0]] == APP_LABEL[1], where
            pod = pod_spec(doc)
            referenced = [v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v]
            referenced += [e["configMapRef"]["name"] for c in pod.get("containers", [])
                           for e in c.get("envFrom", []) if "configMapRef" in e]
            assert set(referenced) <= config_maps, where
            key = json.dumps(doc, sort_keys=True)
            if doc["apiVersion"].startswith(CRD_GROUPS) or key in seen:
                continue
            seen.add(key)
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)


def test_component_order_does_not_matter(every_build: dict[Build, list[Doc]]) -> None:
    """The same components listed in any order build the same objects."""
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
    for (how, order), docs in every_build.items():
        first = every_build[(how, tuple(name for name in ALL_COMPONENTS if name in order))]
        assert sorted(docs, key=key) == sorted(first, key=key), (how, order)


def test_every_pod_reads_the_routing_file_when_it_is_enabled(
        every_build: dict[Build, list[Doc]]) -> None:
    """With the routing component every Deployment (web, worker and KEDA's worker-extra)
    mounts the routing ConfigMap and names the file in CALLWATCH_CONFIG_FILE; without it
    none does. A worker without the file would refuse its sinks' deliveries."""
    for (how, order), docs in every_build.items():
        deployments = by_kind(docs, "Deployment")
        assert set(deployments) == {WEB, WORKER} | ({WORKER_EXTRA} if "keda" in order else set())
        for name, deployment in deployments.items():
            env = {e["name"]: e.get("value") for e in container(deployment).get("env", [])}
            if "routing" not in order:
                assert "CALLWATCH_CONFIG_FILE" not in env, (how, order, name)
                continue
            path = Path(env["CALLWATCH_CONFIG_FILE"])
            mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
            volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
            (mount,) = [m for m in mounts.values() if m["mountPath"] == str(path.parent)]
            assert mount.get("readOnly") is True, (how, order, name)
            routing = by_kind(docs, "ConfigMap")[volumes[mount["name"]]["configMap"]["name"]]
            assert routing["data"][path.name] == \
                (K8S / "routing" / "callwatch.yaml").read_text(encoding="utf-8")
        if "keda" in order:
            assert pod_spec(deployments[WORKER_EXTRA]) == pod_spec(deployments[WORKER]), \
                (how, order)


def test_replicas_spread_over_nodes_and_zones(deployments: dict[str, Doc]) -> None:
    """web, worker and worker-extra never put two of their pods on one node while another
    node can take one (so two replicas survive a node loss), prefer distinct zones, ignore
    tainted (cordoned or lost) nodes, and count only their own Deployment's pods."""
    for name, deployment in deployments.items():
        spread = {c["topologyKey"]: c for c in pod_spec(deployment)["topologySpreadConstraints"]}
        assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, name
        assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
        assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for constraint in spread.values():
            assert constraint["maxSkew"] == 1 and constraint["nodeTaintsPolicy"] == "Honor"
            # The selector and the keys taken from the pod's own labels select exactly
            # this Deployment's pods.
            selector = dict(constraint["labelSelector"]["matchLabels"])
            selector.update({k: labels[k] for k in constraint["matchLabelKeys"] if k in labels})
            assert selector == deployment["spec"]["selector"]["matchLabels"], name
            assert "pod-template-hash" in constraint["matchLabelKeys"]


# --- the pods -----------------------------------------------------------------------

def test_web_probes_use_health_and_readiness_routes(deployments: dict[str, Doc]) -> None:
    """web: readiness on /readyz (Redis), liveness on /healthz (nothing), on its http port."""
    web = container(deployments[WEB])
    ports = {port["name"]: port["containerPort"] for port in web["ports"]}
    assert ports == {"http": 8000}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_every_container_has_requests_and_limits(deployments: dict[str, Doc]) -> None:
    """CPU and memory requests and limits on every container, limits >= requests."""
    units = {"m": 1e-3, "Mi": 2**20, "Gi": 2**30}

    def quantity(text: str) -> float:
        number = str(text).rstrip("miGM")
        return int(number) * units.get(str(text)[len(number):], 1)

    assert set(deployments) == {WEB, WORKER, WORKER_EXTRA}
    for deployment in deployments.values():
        resources = container(deployment)["resources"]
        for resource in ("cpu", "memory"):
            limit, request = resources["limits"][resource], resources["requests"][resource]
            assert quantity(limit) >= quantity(request)


def test_pods_run_locked_down(deployments: dict[str, Doc]) -> None:
    """Non-root uid 10001, read-only root, no privilege escalation, no capabilities, seccomp."""
    for deployment in deployments.values():
        pod = pod_spec(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        security = container(deployment)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        # A read-only root needs a writable /tmp (gunicorn's heartbeat files, tempfile).
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 (the pod's own /tmp)


def test_pods_read_config_and_secrets(deployments: dict[str, Doc]) -> None:
    """Every pod reads the ConfigMap and the callwatch-secrets Secret."""
    for deployment in deployments.values():
        env_from = container(deployment)["envFrom"]
        assert {"configMapRef": {"name": "callwatch-config"}} in env_from
        assert {"secretRef": {"name": "callwatch-secrets"}} in env_from


def test_always_on_worker_is_never_autoscaled(docs: list[Doc], deployments: dict[str, Doc]) -> None:
    """The scheduler-running worker keeps >= 1 replica and no HPA or KEDA targets it."""
    assert deployments[WORKER]["spec"]["replicas"] >= 1
    targets = {d["spec"]["scaleTargetRef"]["name"]
               for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")}
    assert targets == {WEB, WORKER_EXTRA}
    assert by_kind(docs, "PodDisruptionBudget")[WORKER]["spec"]["minAvailable"] == 1


def test_worker_grace_period_outlasts_the_longest_job(deployments: dict[str, Doc]) -> None:
    """SIGKILL never lands before a running analysis job could have finished."""
    longest = max(ANALYSIS_JOB_TIMEOUT_S, DELIVERY_JOB_TIMEOUT_S)
    for name in (WORKER, WORKER_EXTRA):
        assert pod_spec(deployments[name])["terminationGracePeriodSeconds"] > longest
        assert container(deployments[name])["command"] == shlex.split(procfile()["worker"])


def test_extra_workers_run_the_same_pod_as_the_worker(deployments: dict[str, Doc]) -> None:
    """worker-extra differs from worker only by its labels (no drift between the copies)."""
    def pod(name: str) -> Doc:
        return pod_spec(deployments[name])

    assert pod(WORKER) == pod(WORKER_EXTRA)
    assert "replicas" not in deployments[WORKER_EXTRA]["spec"]  # KEDA owns it


def test_scaled_object_watches_the_rq_queue_lists(docs: list[Doc]) -> None:
    """KEDA scales worker-extra on LLEN rq:queue:<name> for every queue, with working auth."""
    (scaled,) = by_kind(docs, "ScaledObject").values()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": WORKER_EXTRA}
    assert 0 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    lists = {trigger["metadata"]["listName"] for trigger in spec["triggers"]}
    assert lists == {f"rq:queue:{name}" for name in QUEUES}
    auths = by_kind(docs, "TriggerAuthentication")
    for trigger in spec["triggers"]:
        assert trigger["type"] == "redis"
        assert int(trigger["metadata"]["listLength"]) > 0
        auth = auths[trigger["authenticationRef"]["name"]]
        parameters = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
        assert parameters == {"address", "password"}
    (example,) = load_docs(K8S / "keda" / "secret.example.yaml")
    refs = auths["callwatch-keda-redis"]["spec"]["secretTargetRef"]
    assert {ref["name"] for ref in refs} == {example["metadata"]["name"]}
    assert {ref["key"] for ref in refs} == set(example["stringData"])


def test_web_scaling_and_disruption_budget(docs: list[Doc], deployments: dict[str, Doc]) -> None:
    """The HPA alone owns web's count (no replicas to reset it on apply), scaling on CPU from
    2, and drains keep one pod."""
    assert "replicas" not in deployments[WEB]["spec"]
    hpa = by_kind(docs, "HorizontalPodAutoscaler")[WEB]
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert by_kind(docs, "PodDisruptionBudget")[WEB]["spec"]["minAvailable"] == 1


def test_ingress_exposes_only_the_callback_route_on_the_public_host(docs: list[Doc]) -> None:
    """Only /twilio/ is public, over TLS, on PUBLIC_BASE_URL's host, to the web Service."""
    (ingress,) = by_kind(docs, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    (tls,) = ingress["spec"]["tls"]
    public = urlsplit(read_env_file(K8S / "config.env")["PUBLIC_BASE_URL"])
    assert public.scheme == "https" and rule["host"] == public.hostname
    assert tls["hosts"] == [rule["host"]]
    assert [p["path"] for p in rule["http"]["paths"]] == ["/twilio/"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = by_kind(docs, "Service")[backend["name"]]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_network_policies_allow_only_what_callwatch_needs() -> None:
    """web takes port 8000 from the ingress controller; pods reach DNS, Redis, HTTPS and SMTP
    (587 STARTTLS, 465 SMTPS: email sinks)."""
    policies = by_kind(assemble(), "NetworkPolicy")
    default = policies["callwatch-default"]["spec"]
    assert default["policyTypes"] == ["Ingress", "Egress"] and default["ingress"] == []
    egress_ports = {(p["protocol"], p["port"]) for rule in default["egress"] for p in rule["ports"]}
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 6379), ("TCP", 443),
                            ("TCP", 587), ("TCP", 465)}
    web = policies["callwatch-web-ingress"]["spec"]
    assert web["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web"
    assert [p["port"] for rule in web["ingress"] for p in rule["ports"]] == [8000]


#: The egress rule that holds every outbound TCP port (the DNS rule comes first).
EGRESS_PORTS_PATH = "/spec/egress/1/ports"


def test_outbound_ports_are_configured_in_one_place() -> None:
    """Every outbound TCP port (Redis, HTTPS, SMTP) is in one egress rule, at /spec/egress/1/ports,
    which k8s/README.md names with the managed Redis and webhook ports it may need."""
    (default,) = [doc for doc in load_docs(K8S / "networkpolicy.yaml")
                  if doc["metadata"]["name"] == "callwatch-default"]
    dns, *others = default["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    (outbound,) = others
    assert outbound is default["spec"]["egress"][int(EGRESS_PORTS_PATH.split("/")[3])]
    assert "to" not in outbound  # any address: in-cluster or managed Redis, any webhook
    assert {p["port"] for p in outbound["ports"]} == {6379, 443, 587, 465}
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    for text in ("6380", "25061", "8443", EGRESS_PORTS_PATH):
        assert text in readme, text


def test_readme_overlay_patch_adds_an_outbound_port(tmp_path: Path) -> None:
    """The overlay patch k8s/README.md shows, built by kubectl, opens a managed Redis's port."""
    kubectl = kubectl_or_skip()
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    overlay = readme.split("<!-- egress-overlay -->")[1].split("```yaml\n", 1)[1].split("```")[0]
    shutil.copytree(K8S, tmp_path / "callwatch" / "k8s")
    (tmp_path / "overlay").mkdir()
    (tmp_path / "overlay" / "kustomization.yaml").write_text(overlay, encoding="utf-8")
    out = subprocess.run([kubectl, "kustomize", str(tmp_path / "overlay")], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    policies = by_kind([doc for doc in yaml.safe_load_all(out) if doc], "NetworkPolicy")
    ports = {p["port"] for p in policies["callwatch-default"]["spec"]["egress"][1]["ports"]}
    assert ports == {6379, 443, 587, 465, 6380}


# --- Prometheus scrape wiring -------------------------------------------------------

def test_web_pods_carry_scrape_annotations_for_their_metrics_port(
        deployments: dict[str, Doc]) -> None:
    """prometheus.io/* annotations on web pods name its http port and /metrics."""
    annotations = deployments[WEB]["spec"]["template"]["metadata"]["annotations"]
    ports = {port["name"]: port["containerPort"] for port in container(deployments[WEB])["ports"]}
    assert annotations == {"prometheus.io/scrape": "true",
                           "prometheus.io/port": str(ports["http"]),
                           "prometheus.io/path": "/metrics"}


def test_prometheus_component_scrapes_web_and_loads_the_shipped_rules(docs: list[Doc]) -> None:
    """The ServiceMonitor picks the web Service's http port, Prometheus may reach port 8000,
    and the PrometheusRule holds docs/alerts.yaml's groups."""
    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = by_kind(docs, "Service")[WEB]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    metrics = by_kind(docs, "NetworkPolicy")["callwatch-web-metrics"]["spec"]
    assert metrics["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web"
    assert [p["port"] for rule in metrics["ingress"] for p in rule["ports"]] == [8000]
    (rule,) = by_kind(docs, "PrometheusRule").values()
    shipped = yaml.safe_load((ROOT / "docs" / "alerts.yaml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == shipped["groups"]


# --- configuration: one source of truth ---------------------------------------------

def test_configmap_holds_only_non_secret_settings() -> None:
    """config.env's keys are Settings variables, and none of them is a secret."""
    keys = set(read_env_file(K8S / "config.env"))
    assert keys <= SETTING_VARS
    assert not keys & SECRET_VARS


def test_every_setting_is_configurable_on_kubernetes() -> None:
    """Each Settings variable is in config.env or the example Secret, which holds the secrets."""
    (secret,) = load_docs(K8S / "secret.example.yaml")
    assert secret["metadata"]["name"] == "callwatch-secrets"
    assert set(secret["stringData"]) == SECRET_VARS
    assert set(read_env_file(K8S / "config.env")) | set(secret["stringData"]) == SETTING_VARS


def test_config_env_parses_once_the_account_sid_is_filled_in() -> None:
    """config.env's values are valid for Settings (only the SID placeholder is refused)."""
    env = read_env_file(K8S / "config.env") | {"TWILIO_AUTH_TOKEN": "token"}
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        Settings.from_env(env)
    settings = Settings.from_env(env | {"TWILIO_ACCOUNT_SID": VALID_SID})
    assert settings.port == 8000


def test_app_json_lists_every_setting() -> None:
    """app.json's env names every Settings variable and the gunicorn ones; secrets get no value."""
    env = app_json()["env"]
    assert set(env) == SETTING_VARS | DEPLOYMENT_ONLY_VARS
    for name, entry in env.items():
        assert entry["description"], name
        assert entry["required"] is (name in REQUIRED_VARS), name
    for name in SECRET_VARS:
        assert "value" not in env[name], name
    assert env["TWILIO_VALIDATE_SIGNATURES"]["value"] == "true"
    assert "value" not in env["PORT"]  # Heroku sets it


def test_app_json_defaults_are_callwatchs_defaults() -> None:
    """app.json's values parse and equal Settings' defaults, but for Heroku's one proxy hop
    and its Redis's self-signed certificate."""
    required = {"TWILIO_ACCOUNT_SID": VALID_SID, "TWILIO_AUTH_TOKEN": "token"}
    values = {name: e["value"] for name, e in app_json()["env"].items()
              if "value" in e and name in SETTING_VARS}
    heroku = Settings.from_env(required | values)
    assert heroku == dataclasses.replace(Settings.from_env(required), trusted_proxy_hops=1,
                                         redis_tls_verify=False)


def test_heroku_builds_the_package_from_pyproject() -> None:
    """requirements.txt (which Heroku's buildpack needs) installs this package, nothing else."""
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line.strip() and not line.startswith("#")] == ["."]


def test_app_json_provisions_redis_and_both_process_types() -> None:
    """Heroku gets the Python buildpack, Heroku Key-Value Store's smallest plan (mini) and
    one web and one worker dyno."""
    app = app_json()
    assert app["addons"] == [{"plan": "heroku-redis:mini"}]
    assert [b["url"] for b in app["buildpacks"]] == ["heroku/python"]
    assert set(app["formation"]) == set(procfile()) - {"release"}  # release is no dyno
    assert all(f["quantity"] >= 1 for f in app["formation"].values())


# --- Procfile, Dockerfile and their agreement ---------------------------------------

def test_procfile_runs_web_and_worker() -> None:
    """Exactly web (gunicorn on the WSGI module), worker (python -m workers.worker), and a
    release phase that checks the configuration before Heroku restarts any dyno."""
    processes = procfile()
    assert processes == {
        "web": "gunicorn --config gunicorn.conf.py workers.wsgi:app",
        "worker": "python -m workers.worker",
        "release": "callwatch config check",
    }
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "callwatch" in scripts["project"]["scripts"]
    for module in ("gunicorn.conf.py", "workers/wsgi.py", "workers/worker.py"):
        assert (ROOT / module).is_file(), module


def test_one_command_per_process_everywhere() -> None:
    """Dockerfile CMD and the k8s commands are the Procfile's, word for word."""
    (cmd,) = [args for op, args in dockerfile() if op == "CMD"]
    deployments = by_kind(assemble(components=COMPONENTS), "Deployment")
    assert json.loads(cmd) == shlex.split(procfile()["web"])
    assert container(deployments[WEB])["command"] == shlex.split(procfile()["web"])
    assert container(deployments[WORKER])["command"] == shlex.split(procfile()["worker"])


def test_dockerfile_builds_a_slim_non_root_image() -> None:
    """Two python:3.11-slim stages, both pinned to one digest; the final one unbuffered,
    non-root 10001, port 8000."""
    steps = dockerfile()
    stages = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(stages) == 2 and stages[0] == stages[1]
    name, _, digest = stages[0].partition("@")
    assert name == "python:3.11-slim"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest
    final = steps[[i for i, (op, _) in enumerate(steps) if op == "FROM"][-1]:]
    env = " ".join(args for op, args in final if op == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    (user,) = [args for op, args in final if op == "USER"]
    assert user.split(":")[0] == "10001"
    assert ("EXPOSE", "8000") in final
    assert any(op == "COPY" and args.startswith("--from=builder /opt/venv") for op, args in final)


def test_dockerignore_keeps_what_the_image_copies() -> None:
    """.dockerignore drops the venv and git but none of the files the Dockerfile copies."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
                   for pattern in patterns for prefix in prefixes)

    sources = [word for op, args in dockerfile() if op == "COPY" and not args.startswith("--from")
               for word in args.split()[:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), source
    for path in (".venv", ".git", "tests", ".pytest_cache"):
        assert ignored(path), path


def test_image_installs_exactly_the_locked_dependencies() -> None:
    """The builder installs requirements.lock with --require-hashes (every pin hashed), then
    callwatch itself with --no-deps and no build isolation: nothing unpinned is fetched."""
    runs = [args for op, args in dockerfile() if op == "RUN"]
    (lock_install,) = [args for args in runs if "requirements.lock" in args]
    assert "--require-hashes" in lock_install.split()
    (package_install,) = [args for args in runs if re.search(r"pip install .*\s\.(\s|$)", args)]
    assert {"--no-deps", "--no-build-isolation"} <= set(package_install.split())
    copies = [args for op, args in dockerfile() if op == "COPY"]
    assert any(args.split()[0] == "requirements.lock" for args in copies)


def test_python_version_is_311_everywhere() -> None:
    """Heroku's .python-version, the image and the pods all run Python 3.11."""
    assert (ROOT / ".python-version").read_text(encoding="utf-8").strip() == "3.11"
    assert all(args.startswith("python:3.11-") for op, args in dockerfile() if op == "FROM")
