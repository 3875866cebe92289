"""Validators and escapes of the answers: each validator returns "" when the value is good, else a
message naming the rule broken, which copier.yml shows under the question's name.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

# Every `<slug>-<suffix>` name the template gives a Kubernetes object (deploy/k8s, deploy/scripts):
# namespaces <slug>-staging/-production, Services <slug>-canary/-preview/-stable, Deployments
# <slug>-blue/-green/-stable/-canary, the Job <slug>-migrate, the Secret and ConfigMap (their names
# may reach 253 characters; listed for completeness), and the label
# app.kubernetes.io/instance=<slug>-<env>. Namespace names, Service names and label values are at
# most 63 characters, so the slug leaves room for the longest suffix; a test checks that this list
# covers the template. The preview namespaces are <slug>-preview-1 to <slug>-preview-99
# (deploy/scripts/preview-slots.sh caps the pool at 99 so that the longest fits).
DERIVED_NAME_SUFFIXES = ("-production", "-staging", "-secrets", "-config", "-migrate", "-preview",
                         "-preview-99", "-canary", "-stable", "-green", "-blue")
K8S_NAME_MAX = 63
LONGEST_SUFFIX = max(DERIVED_NAME_SUFFIXES, key=len)
SLUG_MAX = K8S_NAME_MAX - len(LONGEST_SUFFIX)  # 52
# A DNS-1035 label, not DNS-1123: Service names must start with a letter.
_SLUG = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
# Words YAML 1.1 reads as booleans or null: kustomize (go-yaml) then refuses a label value such as
# `app.kubernetes.io/name: y` ("cannot unmarshal bool into ... of type string"), found by deploying
# a one-letter slug to the test cluster. The other YAML scalars start with a digit, a dot or a sign.
YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_GITHUB_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


# --------------------------------------------------------------------------------------------
# Validators: each returns "" when the value is good, else a message naming the rule broken.
# copier.yml shows the message under the question's name.
# --------------------------------------------------------------------------------------------
def slugify(value: str) -> str:
    """A valid slug derived from free text: 'My Service!' -> 'my-service', '123 Service' -> 'service'.

    It is the question's default, so it always passes slug_error: leading digits are dropped (a
    Service name starts with a letter) and the result is cut to SLUG_MAX."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(value).lower()).lstrip("0123456789-")
    slug = slug[:SLUG_MAX].rstrip("-") or "service"
    return f"{slug}-service" if slug in YAML_WORDS else slug


SLUG_RULE = (f"a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending "
             f"with a letter or digit, at most {SLUG_MAX} characters")
SLUG_REASON = (f"it names the image and every Kubernetes object: the namespace <slug>{LONGEST_SUFFIX} "
               f"must fit in {K8S_NAME_MAX} characters and Service names must start with a letter, "
               "or the API server refuses them")


def slug_error(value: Any) -> str:
    value = str(value)
    if len(value) > SLUG_MAX:
        return f"must be {SLUG_RULE}, got {len(value)} characters ({SLUG_REASON})"
    if not _SLUG.match(value):
        return f"must be {SLUG_RULE} ({SLUG_REASON})"
    if value in YAML_WORDS:
        return (f"must not be one of {', '.join(sorted(YAML_WORDS))}: YAML reads '{value}' as a boolean or "
                "null, and the Kubernetes manifests use the slug as a label value")
    return ""


def github_owner_error(value: Any) -> str:
    if not _GITHUB_OWNER.match(str(value)):
        return ("must be a GitHub user or organisation name: letters, digits and single '-' "
                "between them, at most 39 characters")
    return ""


# Backstage entity references (catalog-info.yaml): `[<kind>:][<namespace>/]<name>`, each part a
# sequence of [A-Za-z0-9] runs joined by single '-', '_' or '.', at most 63 characters (the rules of
# Backstage's FieldFormatEntityPolicy; tests/test_catalog.py runs Backstage's own validator).
_CATALOG_PART = r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*"
_CATALOG_REF = re.compile(
    rf"^(?:(?P<kind>{_CATALOG_PART}):)?(?:(?P<namespace>{_CATALOG_PART})/)?(?P<name>{_CATALOG_PART})$")


def catalog_ref_error(value: Any, kinds: tuple[str, ...] = (), optional: bool = False) -> str:
    """'' when VALUE is a Backstage entity reference (of one of KINDS when it names a kind)."""
    text = str(value)
    if optional and text == "":
        return ""
    match = _CATALOG_REF.match(text)
    if not match or any(len(part or "") > 63 for part in match.groups()):
        return ("must be a Backstage entity reference, [kind:][namespace/]name: letters and digits "
                "joined by single '-', '_' or '.', each part at most 63 characters")
    if match["kind"] and kinds and match["kind"].lower() not in kinds:
        return f"may name the kind {' or '.join(kinds)} only, got '{match['kind']}'"
    return ""


# Free text lands in YAML, a Dockerfile LABEL, JSON and GitHub workflows: one line of plain text,
# no control or invisible formatting characters (Trojan-Source bidi overrides, zero-width spaces),
# and no template/expression delimiters (a `${{ }}` reaching a workflow would be evaluated by
# GitHub Actions; `{{`/`{%`/`{#` would be mistaken for template code by later tooling).
_TEMPLATE_DELIMITERS = ("{{", "{%", "{#")
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}


# Free text lands in a Dockerfile LABEL, Markdown headings and paragraphs, package metadata: one
# line, and short enough to read there.
TEXT_MAX = {"project_name": 80, "description": 200}


def text_error(value: Any, limit: int = 200) -> str:
    value = str(value)
    if len(value) > limit:
        return f"must be at most {limit} characters, got {len(value)}"
    if value.endswith("\\"):
        # the Dockerfile LABEL would end in an escaped backslash, which hadolint cannot parse
        return "must not end with a backslash"
    bad = sorted({f"U+{ord(ch):04X}" for ch in value if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES})
    if bad:
        return ("must be one line of plain text, without control or invisible formatting characters "
                f"(found {', '.join(bad[:5])})")
    found = [d for d in _TEMPLATE_DELIMITERS if d in value]
    if found:
        return f"must not contain template delimiters such as {found[0]!r} (they would be read as code)"
    return ""


def dockerfile_string(value: Any) -> str:
    """The inside of a double-quoted Dockerfile string: backslash, quote and $ escaped, so that the
    LABEL carries the text as typed (no variable expansion, no line continuation)."""
    return re.sub(r'([\\"$])', r"\\\1", str(value))


# Characters that start Markdown markup, escaped with a backslash as both GitHub (CommonMark) and
# mkdocs (Python-Markdown) read it; HTML's own characters become entities, which both render.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!])")
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_text(value: Any) -> str:
    """Free text as literal Markdown: no markup, no HTML, the characters shown as typed."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))
    return re.sub(r"[&<>]", lambda match: _HTML_ENTITIES[match.group()], escaped)


def port_number(value: Any) -> int | None:
    """The port as an integer: 8080, or "8080" as typed at the prompt (the question is `type: str`;
    spaces or tabs around the digits are dropped); None for anything else ("abc", "80.5", True)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip(" \t")):
        return int(value.strip(" \t"))
    return None


def port_error(value: Any) -> str:
    # the question is `type: str` (copier.yml says why): this validator, not a cast of copier's,
    # refuses anything but digits, with the question named; the context hook makes it an integer
    port = port_number(value)
    if port is None:
        return f"must be a whole number from 1024 to 65535, such as 8080, got {value!r}"
    if not 1024 <= port <= 65535:
        return ("must be between 1024 and 65535 (the service runs as a non-root user, which cannot "
                f"bind ports below 1024), got {port}")
    return ""


def parse_steps(value: Any) -> list[int]:
    """'10, 25,50,100' or [10, 25, 50, 100] -> [10, 25, 50, 100]; raises ValueError."""
    items = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
    return [int(item) for item in items if str(item) != ""]


def canary_steps_error(value: Any) -> str:
    try:
        steps = parse_steps(value)
    except (TypeError, ValueError):
        return f"must be comma-separated whole percentages such as 10,25,50,100, got {value!r}"
    if not steps:
        return "must list at least one percentage, ending at 100"
    if any(not 1 <= step <= 100 for step in steps):
        return f"each percentage must be between 1 and 100, got {steps}"
    if any(b <= a for a, b in itertools.pairwise(steps)):
        return f"percentages must be strictly increasing, got {steps}"
    if steps[-1] != 100:
        return f"the last step must be 100 (the canary ends holding all traffic), got {steps}"
    return ""


def recorded_answers(dst_path: Any, answers_file: Any) -> dict[str, Any]:
    """The answers recorded in the destination by the last copy or update ({} when there are none).

    Copier offers ``_external_data`` for this, but it warns on every first copy, when the file
    cannot exist yet; reading it here stays quiet (docs/decisions/0061-language-is-fixed.md).
    """
    try:
        data = yaml.safe_load((Path(str(dst_path)) / str(answers_file)).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def language_change_error(language: Any, dst_path: Any, answers_file: Any, languages: Iterable[str]) -> str:
    """Refuse another language than the one recorded in the destination's answers file (one of
    `languages`, the template's; an unknown recorded value is the language question's to refuse).

    During `copier update` the destination holds the previous answers; on a first copy it holds
    none. Copier also renders throwaway copies in empty temporary folders while updating: there
    is nothing recorded there, so they pass.
    """
    previous = recorded_answers(dst_path, answers_file).get("language")
    if previous is None or previous == language or previous not in languages:
        return ""
    return (f"this repository is a {previous} service and `copier update` cannot turn it into a "
            f"{language} one: another language is another service. Keep language={previous} "
            f"here, and create the {language} service in a new repository with `copier copy`")
