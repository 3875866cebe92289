"""Jinja extensions of the template: the context hook and the filters.

The values live in ``facts.py`` (the facts table and the other tables), the answers' validators
and escapes in ``validators.py``; this module puts them into every render: ``facts`` (the chosen
language's row with its version applied) and the values derived from the answers, the filters and
globals copier.yml and the templates call, and which template paths a render keeps.

Copier loads this module by its path through copier-template-extensions (``_jinja_extensions`` in
copier.yml), which is why users pass ``--trust``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

from copier_template_extensions import ContextHook
from jinja2 import pass_context
from jinja2.ext import Extension


def _sibling(name: str) -> ModuleType:
    """extensions/<name>.py. Copier imports this file by path, not as a package, and one test
    session renders several checkouts of the template (tests/test_layout.py): the module is
    registered under a name unique to its file, never a bare `facts` another checkout could own."""
    path = Path(__file__).resolve().with_name(f"{name}.py")
    key = f"_deployment_patterns_{name}_{hashlib.sha256(str(path).encode()).hexdigest()[:16]}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


_facts = _sibling("facts")
_validators = _sibling("validators")
COMMON_DOCKERIGNORE, COMMON_GITIGNORE, COMMON_ENV = _facts.COMMON_DOCKERIGNORE, _facts.COMMON_GITIGNORE, _facts.COMMON_ENV
FACTS, STRATEGIES, SHUTDOWN, NETWORK = _facts.FACTS, _facts.STRATEGIES, _facts.SHUTDOWN, _facts.NETWORK
DATABASE_PATHS, PREVIEW_PATHS, MANAGEMENT_PORT = _facts.DATABASE_PATHS, _facts.PREVIEW_PATHS, _facts.MANAGEMENT_PORT

# --------------------------------------------------------------------------------------------
# Which template paths a render keeps: template/ holds real names only, and one computed
# `_exclude` entry (copier.yml) leaves out what these answers do not render. rendered() answers
# from the same table, so that a ticked checklist item never names a file that is not there.
# --------------------------------------------------------------------------------------------
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "template"
TEMPLATES_SUFFIX = ".jinja"


def excluded_paths(language: Any, strategy: Any, preview_deploys: Any) -> list[str]:
    """The paths these answers leave out, as patterns anchored at the repository root."""
    paths = [path for name, row in FACTS.items() if name != language for path in row["paths"]]
    paths += [path for name, row in STRATEGIES.items() if name != strategy for path in row["paths"]]
    if not FACTS.get(str(language), {}).get("has_database"):
        paths += DATABASE_PATHS
    if preview_deploys is not True:
        paths += PREVIEW_PATHS
    return [f"/{path}" for path in paths]


@functools.lru_cache(maxsize=4)
def _template_files(template_dir: Path = TEMPLATE_DIR) -> frozenset[str]:
    """Every file under template/, named as a render names it (the templates suffix dropped)."""
    return frozenset(file.relative_to(template_dir).as_posix().removesuffix(TEMPLATES_SUFFIX)
                     for file in template_dir.rglob("*") if file.is_file())


# Lockfiles are kept as their package manager writes them, in includes/<language>/, not as
# Jinja copies: their one per-render value, the project's own name, is put in here.
INCLUDES_DIR = TEMPLATE_DIR.parent / "includes"


@functools.lru_cache(maxsize=8)
def _plain(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def lockfile(language: str, name: str, project_name: str) -> str:
    """includes/<language>/<name> with the root project named PROJECT_NAME."""
    text = _plain(INCLUDES_DIR / language / name)
    if name == "package-lock.json":  # the top-level "name" and the root package's (packages[""])
        old = json.loads(text)["name"]
        assert text.count(f'"name": "{old}"') == 2, f"{name}: the root name is not where npm writes it"
        return text.replace(f'"name": "{old}"', json.dumps({"name": project_name})[1:-1], 2)
    if name == "uv.lock":  # the project's own [[package]] (its source is the repository itself)
        (old,) = [package["name"] for package in tomllib.loads(text)["package"]
                  if {"editable", "virtual"} & set(package.get("source", {}))]
        assert text.count(f'name = "{old}"') == 1, f"{name}: the project's name is not where uv writes it"
        return text.replace(f'name = "{old}"', f'name = {json.dumps(project_name)}', 1)
    raise ValueError(f"no rule for the lockfile {name}")


@pass_context
def rendered(ctx, *paths: str) -> bool:
    """True when every one of ``paths`` (relative to the rendered repository) is rendered."""
    left_out = [pattern.lstrip("/") for pattern in excluded_paths(
        ctx.get("language"), ctx.get("deployment_strategy"), ctx.get("preview_deploys"))]
    files = _template_files()

    def kept(path: str) -> bool:
        return path in files and not any(path == out or path.startswith(out + "/") for out in left_out)

    return bool(paths) and all(kept(path) for path in paths)


def env_vars(facts: dict[str, Any], port: Any, slug: str) -> list[dict[str, Any]]:
    """COMMON_ENV then the language's own variables; a language entry named like a common one
    overrides its fields (for example a different default)."""
    own = {var["name"]: var for var in facts["env"]}
    merged = [{**var, **own.pop(var["name"], {})} for var in COMMON_ENV] + list(own.values())
    return [dict(var, default=str(var["default"]).format(port=port, slug=slug),
                 local=str(var.get("local", var["default"])).format(port=port, slug=slug)) for var in merged]


def management_port(port: Any) -> int:
    return MANAGEMENT_PORT + 1 if str(port) == str(MANAGEMENT_PORT) else MANAGEMENT_PORT


class ContextUpdater(ContextHook):
    """Exposes ``facts`` (the chosen language's row) and derived values to every template."""

    def hook(self, context: dict[str, Any]) -> None:
        language = context.get("language")
        facts = FACTS.get(language) if isinstance(language, str) else None
        if facts is None:
            # Before the language is answered (or while an unknown one is being refused).
            return
        version = context.get(facts["version_question"]) or facts["versions"][0]
        row = dict(facts)
        row["version"] = str(version)
        row["build_image"] = facts["build_image"].format(version=version)
        row["runtime_image"] = facts["runtime_image"].format(version=version)
        line = ".".join(str(version).split(".")[:2])
        row["tools"] = [{key: text.format(version=version, line=line) for key, text in tool.items()}
                        for tool in facts["tools"]]
        row["dockerignore"] = COMMON_DOCKERIGNORE + facts["dockerignore"]
        row["gitignore"] = COMMON_GITIGNORE + facts["gitignore"]
        context["facts"] = row
        context["image"] = f"ghcr.io/{str(context.get('github_owner', '')).lower()}/{context.get('project_slug', '')}"
        steps = context.get("canary_steps") or "100"
        # Questions are validated after the hook runs: never raise on an answer being refused.
        context["steps"] = _validators.parse_steps(steps) if not _validators.canary_steps_error(steps) else []
        port = context.get("port", facts["default_port"])
        if not _validators.port_error(port):
            # the answer as typed ("9123") becomes the integer every file and the answers file
            # carry, as when the question was `type: yaml`: an answers file with `port: 3000` stays so
            port = _validators.port_number(port)
            context["port"] = port
            if "port" in context.get("_copier_answers", {}):
                context["_copier_answers"] = {**context["_copier_answers"], "port": port}
        context["env_vars"] = env_vars(facts, port, str(context.get("project_slug", "")))
        context["management_port"] = management_port(port)
        context["network"] = NETWORK


class Filters(Extension):
    """Filters and globals used by copier.yml (validators, defaults) and the templates."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.filters.update(
            slugify=_validators.slugify,
            slug_error=_validators.slug_error,
            github_owner_error=_validators.github_owner_error,
            catalog_ref_error=_validators.catalog_ref_error,
            port_error=_validators.port_error,
            text_error=_validators.text_error,
            dockerfile_string=_validators.dockerfile_string,
            markdown_text=_validators.markdown_text,
            canary_steps_error=_validators.canary_steps_error,
            language_change_error=functools.partial(_validators.language_change_error, languages=tuple(FACTS)),
            parse_steps=_validators.parse_steps,
        )
        environment.globals.update(
            FACTS=FACTS,
            TEXT_MAX=_validators.TEXT_MAX,
            STRATEGIES=STRATEGIES,
            SHUTDOWN=SHUTDOWN,
            excluded_paths=excluded_paths,
            lockfile=lockfile,
            rendered=rendered,
        )
