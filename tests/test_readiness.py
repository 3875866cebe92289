"""The readiness check of every render (scripts/readiness.py, `make readiness`).

A fresh render passes every rule whose part is rendered; each rule fails, naming the file to fix,
when a violation is planted in a private copy of a render.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from helpers import LANGUAGES, run

from extensions.facts import FACTS

RULES = ["image-user", "image-healthcheck", "image-pinned", "k8s-probes", "k8s-resources",
         "k8s-security-context", "actions-pinned", "workflow-permissions", "ci-readiness",
         "vulnerability-scans", "traces-exported", "no-secrets", "env-documented", "checklist-files"]
# The part of the render each rule checks; a rule whose part is not rendered must FAIL, never pass.
PART = {"image-user": "Dockerfile", "image-healthcheck": "Dockerfile", "image-pinned": "Dockerfile",
        "k8s-probes": "deploy/k8s/overlays", "k8s-resources": "deploy/k8s/overlays",
        "k8s-security-context": "deploy/k8s/overlays", "actions-pinned": ".github/workflows",
        "workflow-permissions": ".github/workflows", "ci-readiness": ".github/workflows",
        "vulnerability-scans": ".github/workflows", "traces-exported": "deploy/k8s/overlays",
        "no-secrets": ".", "env-documented": "<source>", "checklist-files": "docs/production-readiness.md"}


def readiness(path: Path, *rules: str) -> tuple[int, dict[str, tuple[str, list[str]]]]:
    """Run the check; returns (exit code, {rule: ("ok" | "FAIL", [failure lines])})."""
    args = [a for rule in rules for a in ("--rule", rule)]
    proc = run([sys.executable, str(path / "scripts" / "readiness.py"), "--root", str(path), *args],
               check=False, timeout=120)
    results: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in proc.stdout.splitlines():
        match = re.match(r"^(ok|FAIL)\s+(\S+)\s", line)
        if match:
            current = match.group(2)
            results[current] = (match.group(1), [])
        elif line.startswith("      ") and current:
            results[current][1].append(line.strip())
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc.returncode, results


def rendered(project, part: str) -> bool:
    if part == "<source>":  # the language's service
        return any(rendered(project, src) for src in FACTS[project.language]["source_dirs"])
    path = project.path / part
    return path.is_dir() and any(path.iterdir()) if path.is_dir() else path.exists()


def test_every_rule_holds_on_a_fresh_render_where_its_part_exists(project):
    code, results = readiness(project.path)
    assert sorted(results) == sorted(RULES), "the rule set changed: update RULES and the docs"
    for rule, (status, lines) in results.items():
        if rendered(project, PART[rule]):
            assert status == "ok", f"{rule} fails on a fresh render: {lines}"
        else:
            assert status == "FAIL" and lines, f"{rule} passed although {PART[rule]} is not rendered"
    assert (code == 0) == all(rendered(project, part) for part in PART.values())
    if code == 0:  # and so is `make readiness`, with the same interpreter
        run(["make", "readiness", f"READINESS_VENV={Path(sys.executable).parent.parent}"], cwd=project.path)


def test_the_source_scan_finds_exactly_the_documented_variables(render):
    """The per-language env idiom (facts env_scan) matches the real source both ways."""
    for language in LANGUAGES:
        project = render(language=language)
        if not any((project.path / src).exists() for src in FACTS[language]["source_dirs"]):
            continue  # the language's service is not on this branch yet: nothing to scan
        proc = run([sys.executable, "scripts/readiness.py", "--show-env"], cwd=project.path)
        read = {line.split("\t")[0] for line in proc.stdout.splitlines()}
        documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", project.text(".env.example"), re.MULTILINE))
        # the OpenTelemetry SDK reads the OTEL_* variables itself: the source may name only some
        by_sdk = {name for name in documented - read if name.startswith("OTEL_")}
        assert read == documented - by_sdk, (f"{language}: read but undocumented {sorted(read - documented)}, "
                                             f"documented but not found by the scan {sorted(documented - read - by_sdk)}")


# ------------------------------------------------------------------------------------------------
# Planted violations: each makes its rule fail and names the file to fix.
# ------------------------------------------------------------------------------------------------
def edit(path: Path, old: str | re.Pattern, new: str, count: int = 1) -> None:
    text = path.read_text()
    changed = old.sub(new, text, count=count) if isinstance(old, re.Pattern) else text.replace(old, new, count)
    assert changed != text, f"nothing to replace in {path}"
    path.write_text(changed)


def expect_failure(project, rule: str, file: str, *words: str) -> None:
    code, results = readiness(project.path, rule)
    status, lines = results[rule]
    assert code == 1 and status == "FAIL", f"{rule} did not fail: {lines}"
    named = [line for line in lines if file in line.split(": ")[0]]
    assert named, f"{rule} failed without naming {file}: {lines}"
    for word in words:
        assert any(word in line for line in named), f"{rule}: {word!r} not in {named}"


def workload_file(project) -> Path:
    """The source file of the (first) Deployment of the render's base."""
    for path in sorted((project.path / "deploy/k8s/base").rglob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text()))
        if any(isinstance(d, dict) and d.get("kind") == "Deployment" for d in docs):
            return path
    raise AssertionError("no Deployment in deploy/k8s/base")


def edit_container(path: Path, change) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "Deployment":
            change(doc["spec"]["template"]["spec"], doc["spec"]["template"]["spec"]["containers"][0])
            break
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def needs_part(project, rule: str) -> bool:
    """False (after checking the rule reports the missing part as a failure) when not rendered."""
    if rendered(project, PART[rule]):
        return True
    _, results = readiness(project.path, rule)
    assert results[rule][0] == "FAIL"
    return False


@pytest.mark.parametrize("user, words", [("app", "is a name"), ("0:0", "is root")])
def test_image_user_violation(private_render, user, words):
    project = private_render(language="node")
    edit(project.path / "Dockerfile", re.compile(r"^USER .*$", re.MULTILINE), f"USER {user}")
    expect_failure(project, "image-user", "Dockerfile", words)


def test_image_without_user(private_render):
    project = private_render(language="go", deployment_strategy="canary")
    edit(project.path / "Dockerfile", re.compile(r"^USER .*\n", re.MULTILINE), "")
    expect_failure(project, "image-user", "Dockerfile", "runs as root")


def test_image_healthcheck_violation(private_render):
    project = private_render(language="django")
    edit(project.path / "Dockerfile", re.compile(r"^HEALTHCHECK (?:.*\\\n)*.*\n", re.MULTILINE), "")
    expect_failure(project, "image-healthcheck", "Dockerfile", "no HEALTHCHECK")


def test_image_pinned_violation(private_render):
    project = private_render(language="go")
    edit(project.path / "Dockerfile", re.compile(r"^(FROM\s+(?:--\S+\s+)*)(golang):[^\s@]+(?:@\S+)?", re.MULTILINE),
         r"\1\2:latest")
    expect_failure(project, "image-pinned", "Dockerfile:", "golang:latest")


def test_image_pinned_resolves_build_args(private_render):
    project = private_render(language="node")
    dockerfile = project.path / "Dockerfile"
    text = dockerfile.read_text()
    first_from = re.search(r"^FROM (\S+)", text, re.MULTILINE)
    dockerfile.write_text(text.replace("FROM " + first_from.group(1), "ARG BASE=node\nFROM ${BASE}", 1))
    expect_failure(project, "image-pinned", "Dockerfile:", "FROM node is not pinned")


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe", "startupProbe"])
def test_k8s_probe_violation(private_render, probe):
    project = private_render(language="node", deployment_strategy="blue-green")
    if not needs_part(project, "k8s-probes"):
        return
    target = workload_file(project)
    edit_container(target, lambda pod, container: container.pop(probe))
    expect_failure(project, "k8s-probes", target.relative_to(project.path).as_posix(), probe)


def test_k8s_probe_on_the_wrong_path(private_render):
    project = private_render(language="go", deployment_strategy="rolling")
    if not needs_part(project, "k8s-probes"):
        return
    target = workload_file(project)
    edit_container(target, lambda pod, c: c["readinessProbe"]["httpGet"].update(path="/health"))
    expect_failure(project, "k8s-probes", target.relative_to(project.path).as_posix(), "/ready")


def test_k8s_resources_violation(private_render):
    project = private_render(language="django", deployment_strategy="canary")
    if not needs_part(project, "k8s-resources"):
        return
    target = workload_file(project)
    edit_container(target, lambda pod, container: container["resources"].pop("limits"))
    expect_failure(project, "k8s-resources", target.relative_to(project.path).as_posix(), "limits.memory")


@pytest.mark.parametrize("change, words", [
    (lambda pod, c: c["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
    (lambda pod, c: c["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
    (lambda pod, c: c["securityContext"].update(capabilities={"drop": ["NET_RAW"]}), "drop lacks ALL"),
    (lambda pod, c: pod["securityContext"].update(runAsUser=0), "runAsUser is 0"),
    (lambda pod, c: pod["securityContext"].update(runAsUser=4242), "differs from the image's USER"),
    (lambda pod, c: [s.pop("seccompProfile", None) for s in (pod["securityContext"], c["securityContext"])],
     "seccompProfile"),
    (lambda pod, c: pod.update(hostNetwork=True), "hostNetwork"),
], ids=["privilege-escalation", "writable-root", "capabilities", "root", "uid-mismatch", "seccomp",
        "host-network"])
def test_k8s_security_context_violation(private_render, change, words):
    project = private_render(language="node", deployment_strategy="rolling")
    if not needs_part(project, "k8s-security-context"):
        return
    target = workload_file(project)
    edit_container(target, lambda pod, c: (pod.setdefault("securityContext", {}),
                                           c.setdefault("securityContext", {}), change(pod, c)))
    expect_failure(project, "k8s-security-context", target.relative_to(project.path).as_posix(), words)


def test_k8s_overlay_that_does_not_build(private_render):
    project = private_render(language="go", deployment_strategy="blue-green")
    if not needs_part(project, "k8s-probes"):
        return
    kustomization = project.path / "deploy/k8s/overlays/staging/kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "\nresources:\n  - missing-file.yaml\n")
    expect_failure(project, "k8s-probes", "deploy/k8s/overlays/staging/kustomization.yaml", "failed")


@pytest.mark.parametrize("endpoint, words", [("", "is empty"), ("otel-collector:4318", "not an http(s) URL")],
                         ids=["empty", "not-a-url"])
def test_traces_exported_needs_an_endpoint(private_render, endpoint, words):
    project = private_render(language="go", deployment_strategy="rolling")
    kustomization = project.path / "deploy/k8s/base/kustomization.yaml"
    text = kustomization.read_text()
    assert "- OTEL_EXPORTER_OTLP_ENDPOINT=http" in text
    kustomization.write_text(re.sub(r"- OTEL_EXPORTER_OTLP_ENDPOINT=\S+", f"- OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}", text))
    expect_failure(project, "traces-exported", "deploy/k8s/base/kustomization.yaml", "Deployment/", words)


def test_traces_exported_needs_an_egress_rule_to_the_endpoint(private_render):
    project = private_render(language="django", deployment_strategy="blue-green")
    policy_file = project.path / "deploy/k8s/base/networkpolicy.yaml"
    policy = yaml.safe_load(policy_file.read_text())
    kept = [rule for rule in policy["spec"]["egress"]
            if {"protocol": "TCP", "port": 4318} not in rule.get("ports", [])]
    assert len(kept) == len(policy["spec"]["egress"]) - 1
    policy["spec"]["egress"] = kept
    policy_file.write_text(yaml.safe_dump(policy, sort_keys=False))
    expect_failure(project, "traces-exported", "deploy/k8s/base/networkpolicy.yaml", "TCP port 4318")
    # an endpoint on a port the policy does let out (the database's) passes: ports are what it judges
    kustomization = project.path / "deploy/k8s/base/kustomization.yaml"
    kustomization.write_text(re.sub(r"OTEL_EXPORTER_OTLP_ENDPOINT=\S+", "OTEL_EXPORTER_OTLP_ENDPOINT=http://c.o.svc:5432",
                                    kustomization.read_text()))
    code, results = readiness(project.path, "traces-exported")
    assert code == 0 and results["traces-exported"][0] == "ok", results


def test_actions_pinned_violation(private_render):
    project = private_render(language="node", deployment_strategy="canary")
    if not needs_part(project, "actions-pinned"):
        return
    edit(project.path / ".github/workflows/ci.yml", re.compile(r"(uses: [\w./-]+)@[0-9a-f]{40}"), r"\1@v4")
    expect_failure(project, "actions-pinned", ".github/workflows/ci.yml:", "@v4")


@pytest.mark.parametrize("permissions, words", [
    ("permissions: write-all\n", "grant write"),
    ("permissions:\n  contents: write\n", "grant write"),
    ("", "inherits the repository's default token permissions"),
], ids=["write-all", "write-scope-at-top", "missing"])
def test_workflow_permissions_violation(private_render, permissions, words):
    project = private_render(language="django", deployment_strategy="rolling")
    if not needs_part(project, "workflow-permissions"):
        return
    workflow = project.path / ".github/workflows/ci.yml"
    edit(workflow, re.compile(r"^permissions:.*\n(?:[ #].*\n)*", re.MULTILINE), permissions)
    if not permissions:  # and no job declares its own
        edit(workflow, re.compile(r"^    permissions:.*\n(?:      .*\n)*", re.MULTILINE), "", count=0)
    expect_failure(project, "workflow-permissions", ".github/workflows/ci.yml", words)


def test_ci_must_run_the_readiness_check(private_render):
    project = private_render(language="go", deployment_strategy="rolling")
    if not needs_part(project, "ci-readiness"):
        return
    for workflow in (project.path / ".github/workflows").glob("*.yml"):
        workflow.write_text(workflow.read_text().replace("make readiness", "make check"))
    expect_failure(project, "ci-readiness", ".github/workflows/ci.yml", "make readiness")


SECRETS = {
    "assignment": 'const apiKey = "q8Zr2Lw9Xv4Tn7Bk3Hs6";\n',
    # split so that this file itself carries no token-shaped string
    "aws": "// AKIA" + "Q3EGRZ7NWM4TX5PL\n",
    "private-key": "-----BEGIN RSA " + "PRIVATE KEY-----\n",
    "github-token": "token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + "\n",
    "url-password": "postgres://app:Wq8v2Lr9Xt4z@db.internal:5432/app\n",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secret_violation(private_render, kind):
    project = private_render(language="node")
    planted = project.path / "src" / "planted.ts"
    planted.parent.mkdir(exist_ok=True)
    planted.write_text("// a file with a secret\n" + SECRETS[kind])
    expect_failure(project, "no-secrets", "src/planted.ts:2")


def test_secret_in_committed_kubernetes_secret(private_render):
    project = private_render(language="django")
    secret = project.path / "deploy/k8s/base/secret.yaml"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n"
                      "  DJANGO_SECRET_KEY: hunter2hunter2\n")
    expect_failure(project, "no-secrets", "deploy/k8s/base/secret.yaml", "DJANGO_SECRET_KEY")


def test_secret_scan_allows_placeholders_and_marked_lines(private_render):
    project = private_render(language="go")
    planted = project.path / "notes.md"
    planted.write_text('api_key = "your-api-key-here-1234567"\npassword: ${DB_PASSWORD}\n'
                       'token = "q8Zr2Lw9Xv4Tn7Bk3Hs6"  # readiness: allow-secret (test fixture)\n'
                       "postgres://app:changeme@localhost/app\n")
    _, results = readiness(project.path, "no-secrets")
    assert results["no-secrets"] == ("ok", []), results


PLANTED_READ = {
    "node": ("src", "planted.ts", "export const planted = process.env.PLANTED_VARIABLE;\n"),
    "go": ("internal", "planted.go",
           'package planted\n\nimport "os"\n\nvar Planted = os.Getenv("PLANTED_VARIABLE")\n'),
    "django": ("config", "planted.py", 'import os\n\nPLANTED = os.environ.get("PLANTED_VARIABLE")\n'),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_env_read_but_undocumented(private_render, language):
    project = private_render(language=language)
    folder, name, code = PLANTED_READ[language]
    source = next((project.path / s for s in FACTS[language]["source_dirs"]
                   if (project.path / s).is_dir()), project.path / folder)
    source.mkdir(parents=True, exist_ok=True)
    (source / name).write_text(code)
    expect_failure(project, "env-documented", ".env.example", "PLANTED_VARIABLE")


@pytest.mark.parametrize("language", LANGUAGES)
def test_env_documented_variable_removed(private_render, language):
    project = private_render(language=language)
    if not any((project.path / s).exists() for s in FACTS[language]["source_dirs"]):
        # the service is not on this branch yet: the rule reports that it found no read at all
        expect_failure(project, "env-documented", "scripts/readiness.json", "found no environment variable")
        return
    edit(project.path / ".env.example", re.compile(r"^LOG_LEVEL=.*\n", re.MULTILINE), "")
    expect_failure(project, "env-documented", ".env.example", "LOG_LEVEL")


def test_checklist_names_a_missing_file(private_render):
    project = private_render(language="node", deployment_strategy="blue-green")
    (project.path / ".gitignore").unlink()
    expect_failure(project, "checklist-files", "docs/production-readiness.md:", ".gitignore")


def test_checklist_item_ticked_without_a_file(private_render):
    project = private_render(language="go")
    checklist = project.path / "docs/production-readiness.md"
    edit(checklist, "- [ ] **CORS**", "- [x] **CORS**")
    expect_failure(project, "checklist-files", "docs/production-readiness.md:", "names no file")


def test_the_report_lists_every_failure_and_exits_1(private_render):
    project = private_render(language="django", deployment_strategy="canary")
    edit(project.path / "Dockerfile", re.compile(r"^USER .*$", re.MULTILINE), "USER root")
    (project.path / ".gitignore").unlink()
    proc = run([sys.executable, "scripts/readiness.py"], cwd=project.path, check=False)
    assert proc.returncode == 1
    assert re.search(r"^FAIL\s+image-user", proc.stdout, re.MULTILINE)
    assert re.search(r"^FAIL\s+checklist-files", proc.stdout, re.MULTILINE)
    assert re.search(r"^readiness: \d+ of 14 rules hold; fix the files named above", proc.stdout, re.MULTILINE)


@pytest.mark.toolchain
def test_make_readiness_provisions_its_own_python(private_render, tmp_path):
    """`make readiness` builds its cached virtualenv (python3 -m venv + PyYAML from PyPI) and runs."""
    project = private_render(language="go", deployment_strategy="rolling")
    cache = tmp_path / "cache"
    proc = run(["make", "readiness"], cwd=project.path, check=False, timeout=300,
               XDG_CACHE_HOME=str(cache))
    assert (cache / "service-readiness").is_dir()
    assert re.search(r"^readiness: \d+ of 14 rules hold", proc.stdout, re.MULTILINE), proc.stdout + proc.stderr
    direct, _ = readiness(project.path)
    assert proc.returncode == (2 if direct else 0), "make fails exactly when the check fails"
    again = run(["make", "readiness"], cwd=project.path, check=False, timeout=120, XDG_CACHE_HOME=str(cache))
    assert "pip" not in again.stdout + again.stderr and again.returncode == proc.returncode


def test_the_docs_page_lists_every_rule():
    from helpers import ROOT
    page = (ROOT / "docs" / "readiness.md").read_text()
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", page, re.MULTILINE)
    script = (ROOT / "template" / "scripts" / "readiness.py").read_text()
    assert documented == re.findall(r'Rule\(\s*"([a-z0-9-]+)"', script) == RULES


def test_the_script_passes_the_django_render_linters(render):
    """The script is part of every repository; Django's `make lint` checks it with its own rules."""
    project = render(language="django")
    assert "[tool.ruff" in project.text("pyproject.toml")
    run(["ruff", "check", "--no-cache", "scripts/readiness.py"], cwd=project.path)
    run(["ruff", "format", "--no-cache", "--check", "scripts/readiness.py"], cwd=project.path)
