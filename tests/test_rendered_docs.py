"""The docs of every render: the production-readiness checklist, deployment.md and runbook.md."""

from __future__ import annotations

import re

import pytest

from extensions.facts import FACTS

# Every item of the seed's checklist and rollback checklist, by section, as the key terms a reader
# looks for (the wording is the template's own).
SEED = {
    "Application": ["All tests pass", "unit", "integration", "E2E", "No hardcoded secrets", "Error handling",
                    "edge cases", "structured (JSON", "PII", "Health check", "meaningful status"],
    "Infrastructure": ["builds reproducibly", "pinned", "Environment variables", "documented",
                       "validated at startup", "Resource limits", "(CPU, memory)", "Horizontal scaling",
                       "(min/max instances)", "SSL/TLS on all endpoints"],
    "Monitoring": ["metrics", "request rate", "latency", "errors", "Alerts", "error rate", "threshold",
                   "Log aggregation", "searchable", "Uptime monitoring", "health endpoint"],
    "Security": ["scanned for known vulnerabilities (CVEs)", "CORS", "allowed origins", "Rate limiting",
                 "public endpoints", "Authentication and authorization", "verified", "Security headers",
                 "CSP", "HSTS", "X-Frame-Options"],
    "Operations": ["Rollback plan", "documented", "migrations", "production-sized data", "runbook",
                   "common failure scenarios", "on-call rotation", "escalation path"],
    "Rollback": ["Previous image available and tagged", "backward-compatible", "no destructive changes",
                 "Feature flags", "without a deploy", "alerts on error-rate spikes", "tested in staging"],
}
STRATEGY_ITEMS = {
    "rolling": ["Backward-compatible changes between versions"],
    "blue-green": ["Capacity for two colours", "The switch tested", "Backward-compatible changes between versions"],
    "canary": ["Metrics gate defined", "Backward-compatible changes between versions"],
}
TICKED = re.compile(r"^- \[x\] \*\*(.+?)\*\*(.*)$", re.MULTILINE)
OPEN = re.compile(r"^- \[ \] \*\*(.+?)\*\*", re.MULTILINE)
GUARANTEED = re.compile(r"Guaranteed by ((?:`[^`]+`(?:, )?)+)\.")


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


def items(body: str) -> str:
    """The checklist items of a section (the item lines and their guidance)."""
    return "\n".join(line for line in body.splitlines() if line.startswith(("- [", "  ")))


def test_checklist_keeps_every_seed_item(project):
    found = sections(project.text("docs/production-readiness.md"))
    for section, terms in SEED.items():
        assert section in found, f"section {section} missing"
        body = items(found[section]).lower()
        for term in terms:
            assert term.lower() in body, f"{section}: seed item term {term!r} missing"


def test_each_ticked_item_names_existing_files(project):
    text = project.text("docs/production-readiness.md")
    ticked = TICKED.findall(text)
    assert ticked, "a render guarantees at least the Dockerfile items"
    for term, rest in ticked:
        guarantee = GUARANTEED.search(rest)
        assert guarantee, f"ticked item {term!r} names no file"
        for file in re.findall(r"`([^`]+)`", guarantee.group(1)):
            assert (project.path / file).is_file(), f"{term!r} is guaranteed by {file}, which is not rendered"


def test_every_item_is_either_ticked_or_has_guidance(project):
    text = project.text("docs/production-readiness.md")
    for match in re.finditer(r"^- \[ \] \*\*(.+?)\*\*.*\n((?:  .*\n)+)", text, re.MULTILINE):
        assert len(match.group(2).split()) >= 8, f"open item {match.group(1)!r} has no real guidance"
    open_items = OPEN.findall(text)
    blocks = re.findall(r"^- \[ \] .*\n(?!  )", text, re.MULTILINE)
    assert not blocks, f"open items without guidance: {blocks}"
    assert len(open_items) + len(TICKED.findall(text)) >= 36


# When a part of the template is rendered, the items it guarantees must be ticked: this catches a
# checklist that names a file the part does not have (the tick would silently stay open).
TICKED_WHEN_RENDERED = {
    "Container runs as non-root with a HEALTHCHECK": "Dockerfile",
    "Reproducible image": "<lockfile>",
    "No hardcoded secrets": "scripts/readiness.py",
    "Probes": "deploy/k8s/base",
    "Resource limits": "deploy/k8s/base",
    "Restricted security context": "deploy/k8s/base",
    "All tests pass": ".github/workflows/ci.yml",
    "Pinned actions, least privilege": ".github/workflows/ci.yml",
    "Readiness check in CI": ".github/workflows/ci.yml",
    "Previous image available and tagged": ".github/workflows/deploy.yml",
    "Dependencies kept current": ".github/dependabot.yml",
    "Rollback plan": "deploy/scripts/rollback.sh",
    "Runbook": "docs/runbook.md",
}
CONTRACT_ITEMS = {"Health check": "health", "Structured logging": "logging", "Graceful shutdown": "shutdown",
                  "Application metrics": "metrics", "Environment variables documented and validated": "config"}


def test_items_are_ticked_when_their_part_is_rendered(project):
    ticked = {term for term, _ in TICKED.findall(project.text("docs/production-readiness.md"))}
    for term, part in TICKED_WHEN_RENDERED.items():
        part = part.replace("<lockfile>", FACTS[project.language]["dependency_files"][-1])
        if (project.path / part).exists():
            assert term in ticked, f"{part} is rendered but {term!r} is not ticked: fix the file it names"
    source = [s for s in FACTS[project.language]["source_dirs"] if (project.path / s).exists()]
    if source:
        for term, key in CONTRACT_ITEMS.items():
            assert term in ticked, (f"the {project.language} service is rendered but {term!r} is not ticked: "
                                    f"fix contract_files[{key!r}] in the facts table")


def test_strategy_items_present(project):
    found = sections(project.text("docs/production-readiness.md"))
    strategy_sections = [title for title in found if title.endswith("rollout")]
    assert len(strategy_sections) == 1
    body = found[strategy_sections[0]]
    for term in STRATEGY_ITEMS[project.strategy]:
        assert f"**{term}**" in body
    for other, terms in STRATEGY_ITEMS.items():
        if other != project.strategy:
            assert not any(f"**{t}**" in body for t in terms if t not in STRATEGY_ITEMS[project.strategy])


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def test_deployment_guide_has_both_diagrams(project):
    blocks = mermaid_blocks(project.text("docs/deployment.md"))
    assert len(blocks) == 2
    pipeline = next(b for b in blocks if "Pull request" in b)
    assert "Merge to main" in pipeline and "staging" in pipeline and "production" in pipeline
    assert ("preview deploy" in pipeline) == bool(project.answers.get("preview_deploys", True))
    traffic = next(b for b in blocks if b is not pipeline)
    expected = {"rolling": ["maxUnavailable 0", "/ready"], "blue-green": ["preview", "switch"],
                "canary": [f"{step}%" for step in project.recorded_answers.get("canary_steps", "").split(",")
                           if step] + ["HTTPRoute"]}[project.strategy]
    for word in expected:
        assert word in traffic, f"traffic diagram lacks {word!r}"
    for block in blocks:
        assert block.splitlines()[0].startswith("flowchart")
        for line in block.splitlines():
            assert line.count('"') % 2 == 0, f"unbalanced quotes in mermaid line {line!r}"


def test_deployment_guide_says_how_to_deploy_promote_and_roll_back(project):
    found = sections(project.text("docs/deployment.md"))
    for title in ["Pipeline", "Deploy", "Promote", "Roll back", "Configuration"]:
        assert title in found, f"deployment.md lacks {title}"
    assert "deploy/scripts/deploy.sh --env production --image" in found["Deploy"]
    assert ".github/workflows/deploy.yml" in found["Deploy"]
    assert "deploy/scripts/rollback.sh --env production" in found["Roll back"]
    assert "gh workflow run rollback.yml" in found["Roll back"]
    promote = {"rolling": "rollout status", "blue-green": "deploy/scripts/switch-colour.sh",
               "canary": "deploy/scripts/promote-canary.sh"}[project.strategy]
    assert promote in found["Promote"]


def env_table(text: str) -> dict[str, list[str]]:
    body = sections(text)["Configuration"]
    return {m[0]: [cell.strip() for cell in m[1].split("|")[1:-1]]
            for m in re.findall(r"^\| `([A-Z][A-Z0-9_]*)` (\|.*)$", body, re.MULTILINE)}


def env_example(project) -> dict[str, tuple[str, str]]:
    """NAME -> (value, the comment just above it)."""
    out, comment = {}, []
    for line in project.text(".env.example").splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("# "))
        elif "=" in line:
            name, _, value = line.partition("=")
            out[name] = (value, " ".join(comment))
        else:
            comment = []
    return out


def test_env_table_covers_every_variable_of_env_example(project):
    table = env_table(project.text("docs/deployment.md"))
    example = env_example(project)
    assert list(table) == list(example), "the docs table and .env.example list different variables"
    for name, (meaning, default, required) in table.items():
        value, comment = example[name]
        assert meaning and required in {"yes", "no"}
        assert (required == "yes") == ("Required in production" in comment), name
        if "When unset" not in comment:
            assert default == (f"`{value}`" if value else "none"), f"{name}: table {default}, .env.example {value}"
    assert table["PORT"][1] == f"`{project.answers.get('port', FACTS[project.language]['default_port'])}`"


@pytest.mark.parametrize("port", [9123])
def test_env_table_follows_the_port_answer(render, port):
    project = render(language="go", port=port)
    assert env_table(project.text("docs/deployment.md"))["PORT"][1] == f"`{port}`"
    assert f"PORT={port}\n" in project.text(".env.example")


RUNBOOK = ["Failed rollout", "Readiness failing", "Error-rate spike after deploy", "Failed migration", "Rollback"]


def test_runbook_has_its_sections_with_this_repository_commands(project):
    found = sections(project.text("docs/runbook.md"))
    slug = project.answers.get("project_slug", "my-service")
    for title in RUNBOOK:
        assert title in found, f"runbook lacks {title}"
        assert len(found[title].split()) > 30, f"runbook section {title} is a stub"
    assert "On-call and escalation" in found
    assert f"{slug}-production" in found["Readiness failing"]
    assert "deploy/scripts/rollback.sh --env production" in found["Rollback"]
    failed = {"rolling": "rollout status deployment/", "blue-green": "jsonpath='{.spec.selector}'",
              "canary": "deploy/scripts/abort-canary.sh"}[project.strategy]
    assert failed in found["Failed rollout"]
    migration = "manage.py migrate" if project.language == "django" else "no database"
    assert migration in found["Failed migration"]


def test_readme_links_the_docs(project):
    readme = project.text("README.md")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    for doc in ["docs/production-readiness.md", "docs/deployment.md", "docs/runbook.md"]:
        assert doc in links, f"README does not link {doc}"
    for link in links:
        assert (project.path / link).is_file(), f"README links {link}, which is not rendered"


def test_docs_link_to_each_other_and_to_existing_anchors(project):
    docs = {path.name: path.read_text() for path in (project.path / "docs").glob("*.md")}
    for name in ["production-readiness.md", "deployment.md", "runbook.md"]:
        for target, anchor in re.findall(r"\]\(([a-z-]+\.md)?(?:#([a-z0-9-]+))?\)", docs[name]):
            assert (target or name) in docs, f"{name} links {target}, which is not rendered"
            if anchor:
                slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                         for h in re.findall(r"^#+ (.+)$", docs[target or name], re.MULTILINE)}
                assert anchor in slugs, f"{name} links {target}#{anchor}, which is no heading"


def test_deploy_settings_table_matches_the_scripts(project):
    """Every `: "${NAME:=default}"` setting of deploy/scripts is in deployment.md, same default."""
    table = {m[0]: m[1] for m in re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| (`[^`]*`|none) \|",
                                            sections(project.text("docs/deployment.md"))["Deploy settings"], re.MULTILINE)}
    scripts = project.path / "deploy/scripts"
    settings = {}
    for script in sorted(scripts.glob("*.sh")) if scripts.is_dir() else []:
        settings.update(re.findall(r'^: "\$\{([A-Z][A-Z0-9_]*):=([^}]*)\}"', script.read_text(), re.MULTILINE))
    for name, default in settings.items():
        assert name in table, f"deploy/scripts read {name}, which docs/deployment.md does not list"
        assert table[name] == (f"`{default}`" if default else "none"), f"{name}: default differs"
    if settings:
        assert set(table) == set(settings), f"documented but not read: {set(table) - set(settings)}"


def test_deployment_guide_explains_migrations(project):
    body = sections(project.text("docs/deployment.md"))["Database migrations"]
    assert "expand" in body and "contract" in body
    if project.language == "django":  # the one language with a database
        assert f"{project.answers.get('project_slug', 'my-service')}-migrate" in body


def test_service_contract_page_names_each_language_contract_files():
    from helpers import ROOT
    page = (ROOT / "docs" / "service-contract.md").read_text()
    rows = {m[0]: [c.strip() for c in m[1].split("|")[1:-1]]
            for m in re.findall(r"^\| [a-z ]+ \(`([a-z_]+)`\) (\|.*)$", page, re.MULTILINE)}
    for index, (language, row) in enumerate(FACTS.items()):
        assert set(rows) == set(row["contract_files"])
        for key, path in row["contract_files"].items():
            assert rows[key][index] == (f"`{path}`" if path else "open item"), f"{language} {key}"
