"""Kubernetes manifests (deploy/k8s) and compose.yaml, for every render and environment.

Each overlay is built with `kubectl kustomize` (once per render and environment, cached on the
shared Project); core objects must validate strictly against the Kubernetes 1.33 schemas, Gateway
API objects carry their required fields, and the pod, port, probe, shutdown and strategy rules are
asserted on the parsed objects.
"""

from __future__ import annotations

import copy
import functools
import json
import re

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from helpers import MATRIX, STRATEGIES, run

from extensions.context import management_port
from extensions.facts import FACTS, NETWORK

# kubernetes-validate re-reads its (multi-megabyte) schema files on every call; they never change
# during a session, so read each once: the validation itself is unchanged.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents)

ENVS = ["staging", "production", "preview"]
K8S_VERSION = "1.33.0"
GATEWAY_API = "gateway.networking.k8s.io/v1"
REPLICAS = {"staging": 2, "production": 3, "preview": 1}
SERVING = {"rolling": [""], "blue-green": ["-blue"], "canary": ["-stable"]}
DEPLOYMENTS = {"rolling": [""], "blue-green": ["-blue", "-green"], "canary": ["-stable", "-canary"]}
QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$")
UNITS = {None: 1, "m": 0.001, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


# ------------------------------------------------------------------------------------------------
# Reading the builds
# ------------------------------------------------------------------------------------------------
def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects):
    """(kind/name, pod spec) of every workload: the Deployments and the migration Job."""
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
            for o in objects if o["kind"] in {"Deployment", "Job"}]


def config_data(objects):
    (config_map,) = of_kind(objects, "ConfigMap")
    return config_map["data"]


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def quantity(value) -> float:
    match = QUANTITY.match(str(value))
    assert match, f"not a Kubernetes quantity: {value!r}"
    return float(match.group(1)) * UNITS[match.group(2)]


def service_port(project) -> int:
    return int(project.recorded_answers["port"])


def facts(project):
    return FACTS[project.language]


def image_uid(project) -> int:
    """The numeric user the image runs as (the Dockerfile's USER)."""
    (user,) = re.findall(r"^USER (\d+)(?::\d+)?\s*$", project.text("Dockerfile"), re.MULTILINE)
    return int(user)


# ------------------------------------------------------------------------------------------------
# Builds and schemas
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_overlay_builds_into_its_namespace(project, env):
    objects = project.k8s_objects(env)
    slug = project.recorded_answers["project_slug"]
    namespaces = {o["metadata"].get("namespace") for o in objects}
    # a preview's is the pool's first (deploy.sh --namespace sets the one a pull request claimed)
    assert namespaces == {f"{slug}-preview-1" if env == "preview" else f"{slug}-{env}"}
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), f"duplicate objects in {env}: {names}"
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ServiceAccount", "ConfigMap", "NetworkPolicy",
            "PodDisruptionBudget"} <= kinds
    assert "Secret" not in kinds, "secrets are created by the platform, never committed"


@pytest.mark.parametrize("env", ENVS)
def test_core_objects_validate_strictly(project, env):
    for obj in project.k8s_objects(env):
        if obj["apiVersion"] == GATEWAY_API:
            continue  # CRDs: not in the Kubernetes schemas (test_gateway_api_route checks them)
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field(render):
    """The schema check above has teeth: a misspelt field fails it."""
    project = render(language="go", deployment_strategy="rolling")
    deployment = copy.deepcopy(of_kind(project.k8s_objects("staging"), "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


@pytest.mark.parametrize("env", ENVS)
def test_gateway_api_route(project, env):
    objects = project.k8s_objects(env)
    routes = [o for o in objects if o["apiVersion"].startswith("gateway.networking.k8s.io/")]
    if project.strategy != "canary" or env == "preview":
        assert not routes, "only canary routes traffic through the Gateway (never a preview)"
        return
    (route,) = routes
    slug = project.recorded_answers["project_slug"]
    assert (route["apiVersion"], route["kind"], route["metadata"]["name"]) == (GATEWAY_API, "HTTPRoute", slug)
    spec = route["spec"]
    assert spec["parentRefs"], "a route must attach to a Gateway"
    for parent in spec["parentRefs"]:
        assert parent["name"] and parent.get("kind", "Gateway") == "Gateway"
        assert parent.get("group", "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
    # hostnames keep a route on a shared Gateway from catching every other host's traffic
    assert spec["hostnames"] and all(re.fullmatch(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?", h)
                                     for h in spec["hostnames"])
    (rule,) = spec["rules"]
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    backends = rule["backendRefs"]
    assert [b["name"] for b in backends] == [slug, f"{slug}-canary"], "deploy.sh patches index 0 stable, 1 canary"
    assert [b["weight"] for b in backends] == [100, 0]
    for backend in backends:
        assert backend.get("kind", "Service") == "Service" and backend.get("group", "") == ""
        assert backend["port"] == service_port(project)
        assert backend["port"] in [p["port"] for p in services[backend["name"]]["spec"]["ports"]]


# ------------------------------------------------------------------------------------------------
# The pod
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_pods_meet_the_restricted_pod_security_standard(project, env):
    objects = project.k8s_objects(env)
    uid = image_uid(project)
    assert uid == facts(project)["uid"] and uid != 0
    accounts = {a["metadata"]["name"]: a for a in of_kind(objects, "ServiceAccount")}
    for name, pod in pod_specs(objects):
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == security["runAsGroup"] == security["fsGroup"] == uid, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), name
        assert pod["automountServiceAccountToken"] is False, name
        assert accounts[pod["serviceAccountName"]]["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert not any("hostPath" in v for v in volumes.values()), name
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert not context.get("privileged"), name
            assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add"), name
            assert context["readOnlyRootFilesystem"] is True, name
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            for path in facts(project)["writable_paths"]:
                assert "emptyDir" in volumes[mounts[path]], f"{name}: {path} must be a writable emptyDir"


@pytest.mark.parametrize("env", ENVS)
def test_containers_have_requests_within_limits(project, env):
    for name, pod in pod_specs(project.k8s_objects(env)):
        for container in pod["containers"]:
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert 0 < request <= limit, f"{name}: {resource} request {request} > limit {limit}"


def assert_ports_agree(project, env):
    """Two ports, the same everywhere: `http` (PORT) for traffic, `management` (MANAGEMENT_PORT)
    for the probes and the scrape; the HTTPRoute reaches `http` only (docs/service-contract.md)."""
    objects = project.k8s_objects(env)
    port = service_port(project)
    management = management_port(port)
    assert management != port
    config = config_data(objects)
    assert (config["PORT"], config["MANAGEMENT_PORT"]) == (str(port), str(management))
    for deployment in of_kind(objects, "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert [(p["name"], p["containerPort"], p["protocol"]) for p in container["ports"]] == \
            [("http", port, "TCP"), ("management", management, "TCP")]
        assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "management"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "management"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "management"}
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind(objects, "Deployment")]
    for service in of_kind(objects, "Service"):
        assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == \
            [("http", port, "http"), ("management", management, "management")]
        assert any(selects(service["spec"]["selector"], labels) for labels in pod_labels), \
            f"service/{service['metadata']['name']} selects no pod"
    for route in of_kind(objects, "HTTPRoute"):
        backends = [ref for rule in route["spec"]["rules"] for ref in rule.get("backendRefs", [])]
        assert backends and {ref["port"] for ref in backends} == {port}, "the route reaches PORT only"
    (policy,) = of_kind(objects, "NetworkPolicy")
    assert all(selects(policy["spec"]["podSelector"]["matchLabels"], labels) for labels in pod_labels)
    assert_network_policy(project, policy, port, management)


def namespace_of(peer: dict) -> str:
    assert set(peer) <= {"namespaceSelector", "podSelector"}, f"a peer by address or unselected: {peer}"
    return peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]


def assert_network_policy(project, policy, port, management):
    """Default deny in and out; in: the Gateway on PORT, Prometheus on the management port; out:
    DNS, the OpenTelemetry Collector's namespace on OTLP/HTTP, and the database where there is one
    (NETWORK in extensions/facts.py)."""
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    ingress = {(namespace_of(peer), rule_port["port"]) for rule in spec["ingress"]
               for peer in rule["from"] for rule_port in rule["ports"]}
    assert ingress == {(NETWORK["gateway_namespace"], port), (NETWORK["monitoring_namespace"], management)}
    assert all(rule["from"] and rule["ports"] for rule in spec["ingress"]), "an ingress rule open to all"
    dns, *rest = spec["egress"]
    assert [namespace_of(peer) for peer in dns["to"]] == [NETWORK["dns_namespace"]]
    assert dns["to"][0]["podSelector"]["matchLabels"] == NETWORK["dns_pod_label"]
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    collector, *rest = rest
    assert [namespace_of(peer) for peer in collector["to"]] == [NETWORK["telemetry_namespace"]]
    assert collector["ports"] == [{"protocol": "TCP", "port": NETWORK["otlp_port"]}]
    if facts(project)["has_database"]:
        (database,) = rest
        assert "to" not in database and database["ports"] == [{"protocol": "TCP", "port": NETWORK["database_port"]}]
    else:
        assert rest == [], "egress beyond DNS and the collector for a service without a database"


@pytest.mark.parametrize("env", ENVS)
def test_probes_ports_and_services_agree(project, env):
    assert_ports_agree(project, env)


# 9090 is the management port's own: the service's port then keeps it and management moves on.
@pytest.mark.parametrize("language,strategy,port", [("django", "rolling", 9123), ("node", "blue-green", 9123),
                                                    ("go", "canary", 9090)])
def test_a_chosen_port_reaches_every_object(render, language, strategy, port):
    project = render(language=language, deployment_strategy=strategy, port=port)
    assert project.k8s_container("production")["ports"][0]["containerPort"] == port
    for env in ENVS:
        assert_ports_agree(project, env)


@pytest.mark.parametrize("env", ENVS)
def test_grace_period_covers_the_prestop_sleep_and_the_drain(project, env):
    objects = project.k8s_objects(env)
    config = config_data(objects)
    drain = int(config["SHUTDOWN_DELAY_SECONDS"]) + int(config["SHUTDOWN_TIMEOUT_SECONDS"])
    for deployment in of_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        pre_stop = pod["containers"][0]["lifecycle"]["preStop"]
        assert list(pre_stop) == ["sleep"], "the native sleep action: no shell needed in the image"
        margin = pod["terminationGracePeriodSeconds"] - pre_stop["sleep"]["seconds"] - drain
        assert margin >= 5, f"{deployment['metadata']['name']}: grace period leaves {margin}s of margin"


@pytest.mark.parametrize("env", ENVS)
def test_configuration_from_the_configmap_and_secrets_by_reference(project, env):
    objects = project.k8s_objects(env)
    config = config_data(objects)
    assert config["APP_ENV"] == {"preview": "staging"}.get(env, env)
    assert config["LOG_LEVEL"] in {"debug", "info", "warning", "error"}
    slug = project.recorded_answers["project_slug"]
    secret_variables = set(facts(project)["secret_env"])
    for name, pod in pod_specs(objects):
        container = pod["containers"][0]
        (source,) = container["envFrom"]
        assert source["configMapRef"]["name"] == of_kind(objects, "ConfigMap")[0]["metadata"]["name"]
        env_vars = {e["name"]: e for e in container.get("env", [])}
        # the pod's identity, for the traces' resource: the downward API, then one literal that
        # names it (Kubernetes expands $(NAME) of the variables defined before it)
        identity = {"K8S_POD_NAME": "metadata.name", "K8S_NAMESPACE_NAME": "metadata.namespace",
                    "K8S_NODE_NAME": "spec.nodeName"}
        for variable, field in identity.items():
            assert env_vars.pop(variable)["valueFrom"] == {"fieldRef": {"fieldPath": field}}, name
        assert env_vars.pop("OTEL_RESOURCE_ATTRIBUTES")["value"] == \
            "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME)"
        assert [e["name"] for e in container["env"]][:4] == [*identity, "OTEL_RESOURCE_ATTRIBUTES"], name
        assert set(env_vars) == secret_variables, name
        # the migration Job connects as its own database role: its own key of the same Secret
        keys = facts(project)["migration_secret_keys"] if name.startswith("Job/") else {}
        for variable, entry in env_vars.items():
            assert "value" not in entry, f"{name}: {variable} must come from a Secret, never a literal"
            assert entry["valueFrom"]["secretKeyRef"] == {"name": f"{slug}-secrets", "key": keys.get(variable, variable)}
    # the contract's variables are set per environment (APP_VERSION is baked into the image), and
    # the pod gets only variables the service reads (.env.example lists them)
    shared = {"PORT", "MANAGEMENT_PORT", "APP_ENV", "LOG_LEVEL", "SHUTDOWN_DELAY_SECONDS", "SHUTDOWN_TIMEOUT_SECONDS",
              "OTEL_EXPORTER_OTLP_ENDPOINT"}
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == NETWORK["otlp_endpoint"]
    allowed_hosts = {facts(project)["allowed_hosts_env"]} - {""}
    assert shared | allowed_hosts <= set(config)
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", project.text(".env.example"), re.MULTILINE))
    assert set(config) | secret_variables <= documented
    assert not set(config) & secret_variables, "a secret in the ConfigMap"


# ------------------------------------------------------------------------------------------------
# The strategy's shape and the objects around the pods
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_strategy_shape(project, env):
    objects = project.k8s_objects(env)
    slug = project.recorded_answers["project_slug"]
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    assert sorted(deployments) == sorted(slug + suffix for suffix in DEPLOYMENTS[project.strategy])
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["strategy"] == {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}, name
        assert 1 <= spec["revisionHistoryLimit"] <= 10, name
        assert selects(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])
        serving = name in [slug + s for s in SERVING[project.strategy]]
        assert spec["replicas"] == (REPLICAS[env] if serving else 0), name
        spread = spec["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        for constraint in spread:
            assert selects(constraint["labelSelector"]["matchLabels"], spec["template"]["metadata"]["labels"])
    services = {s["metadata"]["name"]: s["spec"]["selector"] for s in of_kind(objects, "Service")}
    if project.strategy == "rolling":
        assert list(services) == [slug]
    elif project.strategy == "blue-green":
        assert services[slug]["colour"] == "blue" and services[f"{slug}-preview"]["colour"] == "green"
        for colour in ("blue", "green"):
            labels = deployments[f"{slug}-{colour}"]["spec"]["selector"]["matchLabels"]
            assert labels["colour"] == colour
    else:
        assert services[slug]["track"] == "stable" and services[f"{slug}-canary"]["track"] == "canary"
        for track in ("stable", "canary"):
            assert deployments[f"{slug}-{track}"]["spec"]["selector"]["matchLabels"]["track"] == track


PAIR_LABEL = {"blue-green": "colour", "canary": "track"}


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize(("language", "strategy"), [pair for pair in MATRIX if pair[1] in PAIR_LABEL],
                         ids=[f"{lang}-{strategy}" for lang, strategy in MATRIX if strategy in PAIR_LABEL])
def test_the_two_deployments_of_a_strategy_differ_only_in_name_label_and_replicas(render, language, strategy, env):
    """Blue-green's colours and canary's tracks are one Deployment (base/<strategy>/server) that
    each colour's or track's kustomization tells apart: after the build, the two differ in their
    name, the value of their one label (on the Deployment, in its selector, on its pods) and their
    replicas, and in nothing else, so no edit to the pod can reach one colour and not the other."""
    project = render(language=language, deployment_strategy=strategy)
    key, slug = PAIR_LABEL[project.strategy], project.recorded_answers["project_slug"]
    deployments = {d["metadata"]["name"]: d for d in of_kind(project.k8s_objects(env), "Deployment")}
    normalised = {}
    for suffix in DEPLOYMENTS[project.strategy]:
        deployment = copy.deepcopy(deployments[slug + suffix])
        value = suffix.removeprefix("-")
        assert deployment["metadata"].pop("name") == slug + suffix
        spec = deployment["spec"]
        for labels in (deployment["metadata"]["labels"], spec["selector"]["matchLabels"],
                       spec["template"]["metadata"]["labels"]):
            assert labels.pop(key) == value, f"{slug + suffix}: {key} is not {value}"
        spec.pop("replicas")
        # the label stays out of everything else (the topology spread counts all the service's pods)
        assert f'"{key}"' not in json.dumps(deployment), f"{slug + suffix}: {key} set beyond its labels"
        normalised[suffix] = deployment
    first, second = normalised.values()
    assert first == second, f"the {project.strategy} Deployments differ beyond name, {key} and replicas"
    # and in the repository, the pod is written once: one Deployment under base/<strategy>
    sources = [path.relative_to(project.path).as_posix()
               for path in sorted((project.path / "deploy/k8s/base" / project.strategy).rglob("*.yaml"))
               if any((doc or {}).get("kind") == "Deployment" for doc in yaml.safe_load_all(path.read_text()))]
    assert sources == [f"deploy/k8s/base/{project.strategy}/server/deployment.yaml"]


@pytest.mark.parametrize("env", ENVS)
def test_autoscaling_in_production_only(project, env):
    objects = project.k8s_objects(env)
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    if env != "production":
        assert not autoscalers
        return
    slug = project.recorded_answers["project_slug"]
    expected = {"rolling": [""], "blue-green": ["-blue", "-green"], "canary": ["-stable"]}[project.strategy]
    assert sorted(a["spec"]["scaleTargetRef"]["name"] for a in autoscalers) == sorted(slug + s for s in expected)
    for autoscaler in autoscalers:
        assert autoscaler["apiVersion"] == "autoscaling/v2"
        assert autoscaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert REPLICAS["production"] <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]


@pytest.mark.parametrize("env", ENVS)
def test_disruption_budget_covers_the_service_pods_only(project, env):
    objects = project.k8s_objects(env)
    (budget,) = of_kind(objects, "PodDisruptionBudget")
    selector = budget["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["maxUnavailable"] == 1
    for name, pod_template in [(o["metadata"]["name"], o["spec"]["template"]) for o in objects
                               if o["kind"] in {"Deployment", "Job"}]:
        # a Job's pods have no scale subresource: a budget over them would block node drains
        is_server = pod_template["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
        assert selects(selector, pod_template["metadata"]["labels"]) == is_server, name


@pytest.mark.parametrize("env", ENVS)
def test_recommended_labels_on_every_object_and_pod(project, env):
    slug = project.recorded_answers["project_slug"]
    expected = {"app.kubernetes.io/name": slug, "app.kubernetes.io/part-of": slug,
                "app.kubernetes.io/managed-by": "kustomize", "app.kubernetes.io/instance": f"{slug}-{env}"}
    for obj in project.k8s_objects(env):
        labels_sets = [obj["metadata"]["labels"]]
        if obj["kind"] in {"Deployment", "Job"}:
            labels_sets.append(obj["spec"]["template"]["metadata"]["labels"])
        for labels in labels_sets:
            assert expected.items() <= labels.items(), f"{obj['kind']}/{obj['metadata']['name']}: {labels}"
            assert labels["app.kubernetes.io/component"] in {"server", "config", "migration"}


@pytest.mark.parametrize("env", ENVS)
def test_database_migration_job_where_the_service_has_a_database(project, env):
    jobs = of_kind(project.k8s_objects(env), "Job")
    if not facts(project)["has_database"]:
        assert not jobs
        return
    (job,) = jobs
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == facts(project)["migrate_command"]
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration", \
        "deploy.sh applies it separately, before traffic moves"
    assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["activeDeadlineSeconds"] > 0


# ------------------------------------------------------------------------------------------------
# compose.yaml
# ------------------------------------------------------------------------------------------------
def test_compose_files_match_the_compose_specification(render):
    # one check-jsonschema run over every render's compose.yaml (its start-up dominates)
    files = [str(render(language=lang, deployment_strategy=strategy).path / "compose.yaml")
             for lang, strategy in MATRIX]
    run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec", *files])


def test_compose_file_runs_the_image_locked_down(project):
    compose = project.yaml("compose.yaml")
    fact = facts(project)
    port = service_port(project)
    app = compose["services"]["app"]
    assert app["user"] == f"{fact['uid']}:{fact['uid']}" == f"{image_uid(project)}:{image_uid(project)}"
    assert app["read_only"] is True and set(app["tmpfs"]) == set(fact["writable_paths"])
    assert app["cap_drop"] == ["ALL"] and "no-new-privileges:true" in app["security_opt"]
    assert app["healthcheck"]["test"] == ["CMD", *fact["healthcheck_command"]]
    assert {"path": ".env", "required": False} in app["env_file"]
    management = management_port(port)
    assert app["ports"] == [f"127.0.0.1:{port}:{port}", f"127.0.0.1:{management}:{management}"]
    assert app["environment"]["MANAGEMENT_PORT"] == str(management)
    limits = app["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+M", limits["memory"])
    grace = int(app["stop_grace_period"].rstrip("s"))
    assert grace > 5 + 20, "compose must let the service drain (SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT)"
    if fact["has_database"]:
        assert compose["services"]["db"]["image"].startswith("postgres:")
        assert "pg_isready" in compose["services"]["db"]["healthcheck"]["test"]
        assert compose["services"]["migrate"]["command"] == fact["migrate_command"]
        assert app["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert app["environment"]["DATABASE_URL"].startswith("postgres://")
    else:
        assert set(compose["services"]) == {"app"}


def test_every_strategy_is_covered():
    assert STRATEGIES == list(SERVING) == list(DEPLOYMENTS)
