"""Layer 5: `copier update` keeps the team's work and brings the template's new practice.

After the pattern of Copier's own update tests: a throwaway template repository with tags made
here (v0.1.0 is this checkout, v0.2.0 a release that changes a managed file, a seeded file and
adds files), a service copied at the older tag with the team's edits committed, then the real
`copier update` command line. Expectations are computed from fresh renders of the same release,
so the tests stay true as the template grows (more strategy files, more languages' code).
"""

from __future__ import annotations

import os
import shutil
import sys
from itertools import permutations
from pathlib import Path

import copier
import pytest
import yaml
from helpers import LANGUAGES, ROOT, STRATEGIES, run

sys.path.insert(0, str(ROOT))
from extensions.facts import FACTS
from extensions.validators import language_change_error

OLD, NEW = "v0.1.0", "v0.2.0"
MARKERS = ("<<<<<<< before updating", ">>>>>>> after updating")
# Hermetic git: no user or system configuration (hooks, signing, templates) leaks into the tests.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Update Test", "GIT_AUTHOR_EMAIL": "update-test@example.com",
    "GIT_COMMITTER_NAME": "Update Test", "GIT_COMMITTER_EMAIL": "update-test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}
# Stand-in files in each language's seeded folder, so the seeded rules are exercised whatever
# code the language ships there: one the team edits, one it leaves alone, one it deletes.
PROBES = ("probe-edited.txt", "probe-untouched.txt", "probe-deleted.txt")
PROBE_TEXT = "seeded by template {tag}: {name}\nline 2\nline 3\n"
TEMPLATE_V2_LINE = "template {tag} line\n"
# One strategy-named file: a stand-in for the strategy's manifests.
STRATEGY_PROBE = "template/update-probe-{{ deployment_strategy }}.txt"


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
def git(cwd: Path, *args: str, check: bool = True) -> str:
    return run(["git", *args], cwd=cwd, check=check, **GIT_ENV).stdout


def copier_cli(cwd: Path, *args: str, check: bool = True):
    """The real command line, as a team runs it."""
    return run([sys.executable, "-m", "copier", *args], cwd=cwd, check=check, timeout=300, **GIT_ENV)


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)


def init_repo(path: Path, message: str) -> Path:
    git(path, "init", "-q", "-b", "main")
    commit_all(path, message)
    return path


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if (p.is_file() or p.is_symlink()) and ".git" not in p.relative_to(root).parts}


def seeded(language: str, name: str) -> str:
    return f"{FACTS[language]['seeded_dir']}/{name}"


def seeded_source(language: str, name: str) -> str:
    """The template path of a file in the language's seeded folder (template/ holds real names)."""
    return f"template/{FACTS[language]['seeded_dir']}/{name}"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def append(path: Path, text: str) -> None:
    write(path, path.read_text() + text)


def insert_after_first_line(path: Path, text: str) -> None:
    first, rest = path.read_text().split("\n", 1)
    path.write_text(f"{first}\n{text}{rest}")


def recorded(repo: Path) -> dict:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def markers(path: Path) -> set[str]:
    """The conflict markers that start a line of the file (the README quotes them mid-line)."""
    return {line for line in path.read_text(errors="replace").splitlines() if line in MARKERS}


def conflict_free(repo: Path) -> None:
    """No marker in any file, nothing unmerged, no .rej file: and the repo's own check agrees."""
    for rel in files(repo):
        assert not markers(repo / rel), f"needless conflict in {rel}"
        assert not rel.endswith(".rej"), rel
    assert git(repo, "ls-files", "--unmerged") == ""
    run(["scripts/check-no-conflicts.sh"], cwd=repo, **GIT_ENV)


# ------------------------------------------------------------------------------------------------
# The template repository and its releases
# ------------------------------------------------------------------------------------------------
def snapshot_checkout(dst: Path) -> None:
    """This checkout's files as `git add -A` would commit them (uncommitted edits included)."""
    names = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, names.split("\0")):
        src = ROOT / name
        if src.exists() or src.is_symlink():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name, follow_symlinks=False)


def release_v2(repo: Path) -> None:
    """The newer release: changes managed and seeded files, adds a managed and a seeded file."""
    append(repo / "template/Makefile.jinja", "\ntemplate-v2: ## Added by template v0.2.0\n\t@echo v0.2.0\n")
    insert_after_first_line(repo / "template/README.md.jinja", "\nTemplate v0.2.0 added this line.\n")
    write(repo / "template/docs/added-in-v0.2.0.md.jinja", "# {{ project_name }}\n\nAdded by v0.2.0.\n")
    for language in LANGUAGES:
        for name in PROBES:
            append(repo / seeded_source(language, name), TEMPLATE_V2_LINE.format(tag=NEW))
        write(repo / seeded_source(language, "probe-new.txt"), PROBE_TEXT.format(tag=NEW, name="new"))


class TemplateRepo:
    """A git repository of the template with the tags v0.1.0 and v0.2.0; renders are cached."""

    def __init__(self, path: Path, scratch: Path):
        self.path = path
        self.scratch = scratch
        self._renders: dict[tuple, Path] = {}

    def render(self, ref: str, language: str, strategy: str) -> Path:
        """A fresh render of a release (read-only: copy it before changing it)."""
        key = (ref, language, strategy)
        if key not in self._renders:
            dst = self.scratch / f"render-{ref}-{language}-{strategy}"
            copier.run_copy(str(self.path), str(dst), vcs_ref=ref, defaults=True, unsafe=True, quiet=True,
                            data={"language": language, "deployment_strategy": strategy})
            self._renders[key] = dst
        return self._renders[key]

    def service(self, ref: str, language: str, strategy: str, dst: Path) -> Path:
        """A private git repository of the service, as `copier copy` at ``ref`` left it, committed."""
        shutil.copytree(self.render(ref, language, strategy), dst, symlinks=True)
        return init_repo(dst, f"Generated from the template {ref}")


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory) -> TemplateRepo:
    path = tmp_path_factory.mktemp("template") / "deployment-patterns"
    snapshot_checkout(path)
    for language in LANGUAGES:
        for name in PROBES:
            write(path / seeded_source(language, name), PROBE_TEXT.format(tag=OLD, name=name))
    write(path / STRATEGY_PROBE, "stand-in for the strategy's own files\nline 2\nline 3\n")
    init_repo(path, "Template as in this checkout")
    git(path, "tag", OLD)
    release_v2(path)
    commit_all(path, "Template release v0.2.0")
    git(path, "tag", NEW)
    return TemplateRepo(path, tmp_path_factory.mktemp("renders"))


# ------------------------------------------------------------------------------------------------
# Updating keeps the team's work and brings the template's
# ------------------------------------------------------------------------------------------------
SCENARIOS = [("node", "rolling"), ("go", "blue-green"), ("django", "canary")]
TEAM_FILES = ("docs/team-notes.md",)
TEAM_MAKEFILE_LINE = "# Team: deploys are announced in the #payments channel.\n"
TEAM_README = "\n## Team notes\n\nOn call: the payments team.\n"


def team_edits(repo: Path, language: str) -> None:
    """Edits a team makes: managed files, seeded files, a deletion of each kind, files of its own."""
    insert_after_first_line(repo / "Makefile", TEAM_MAKEFILE_LINE)
    append(repo / "README.md", TEAM_README)
    append(repo / seeded(language, "probe-edited.txt"), "team edit\n")
    (repo / seeded(language, "probe-deleted.txt")).unlink()
    (repo / ".editorconfig").unlink()
    write(repo / "docs/team-notes.md", "# Our notes\n")
    write(repo / seeded(language, "orders.txt"), "the team's own code\n")


@pytest.mark.parametrize(("language", "strategy"), SCENARIOS, ids=[f"{lang}-{s}" for lang, s in SCENARIOS])
def test_update_keeps_team_work_and_brings_template_changes(template_repo, tmp_path, language, strategy):
    repo = template_repo.service(OLD, language, strategy, tmp_path / "service")
    team_edits(repo, language)
    commit_all(repo, "Team work")
    answers_before = recorded(repo)

    proc = copier_cli(repo, "update", "--trust", "--defaults")
    assert f"is updated to template {NEW}" in proc.stderr and "make check-conflicts" in proc.stderr, \
        "the message after the update names the release and how to review"

    conflict_free(repo)
    # the team's edits survive, merged with the template's changes to the same managed files
    makefile, readme = (repo / "Makefile").read_text(), (repo / "README.md").read_text()
    assert TEAM_MAKEFILE_LINE in makefile and "template-v2:" in makefile
    assert readme.endswith(TEAM_README) and "Template v0.2.0 added this line." in readme
    assert (repo / "docs/team-notes.md").read_text() == "# Our notes\n"
    assert (repo / seeded(language, "orders.txt")).exists()
    # seeded files are the team's: never changed, whether edited or not; missing ones come back
    v1, v2 = (PROBE_TEXT.format(tag=OLD, name=n) for n in ("probe-edited.txt", "probe-untouched.txt"))
    assert (repo / seeded(language, "probe-edited.txt")).read_text() == v1 + "team edit\n"
    assert (repo / seeded(language, "probe-untouched.txt")).read_text() == v2
    assert (repo / seeded(language, "probe-deleted.txt")).exists()
    assert (repo / seeded(language, "probe-new.txt")).read_text().startswith(f"seeded by template {NEW}")
    # a managed file the team deleted stays deleted
    assert not (repo / ".editorconfig").exists()
    # every other file is exactly the new release's render: its changes and new files arrived
    fresh = template_repo.render(NEW, language, strategy)
    touched = {"Makefile", "README.md", ".editorconfig", *TEAM_FILES}
    seeded_prefix = FACTS[language]["seeded_dir"] + "/"
    for rel in files(fresh) - touched:
        if not rel.startswith(seeded_prefix):
            assert (repo / rel).read_bytes() == (fresh / rel).read_bytes(), f"{rel} differs from {NEW}"
    assert "docs/added-in-v0.2.0.md" in files(repo)
    assert files(repo) == (files(fresh) - {".editorconfig"}) | set(TEAM_FILES) | {seeded(language, "orders.txt")}
    # the answers file records the new release and keeps every answer
    answers = recorded(repo)
    assert answers["_commit"] == NEW
    assert {k: v for k, v in answers.items() if k != "_commit"} == \
        {k: v for k, v in answers_before.items() if k != "_commit"}

    # a second update changes nothing
    commit_all(repo, "Update from the template")
    copier_cli(repo, "update", "--trust", "--defaults")
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


# Where v0.2.0 changes a managed file, the team edits the same place: the end of the Makefile (a
# new target on both sides), the line after the README's title.
COLLISIONS = [("node", "Makefile"), ("go", "README.md"), ("django", "Makefile")]


def collide(repo: Path, rel: str) -> None:
    if rel == "Makefile":
        append(repo / rel, "\nteam-target: ## Ours\n\t@echo team\n")
    else:
        insert_after_first_line(repo / rel, "\nThe payments team owns this service.\n")


@pytest.mark.parametrize(("language", "rel"), COLLISIONS, ids=[f"{lang}-{rel}" for lang, rel in COLLISIONS])
def test_colliding_edit_is_a_visible_unmerged_conflict(template_repo, tmp_path, language, rel):
    repo = template_repo.service(OLD, language, "rolling", tmp_path / "service")
    collide(repo, rel)
    commit_all(repo, "Team edit")

    copier_cli(repo, "update", "--trust", "--defaults")

    text = (repo / rel).read_text()
    assert markers(repo / rel) == set(MARKERS)
    assert ("team-target:" in text and "template-v2:" in text) or \
        ("The payments team" in text and "Template v0.2.0 added" in text), "both sides are kept"
    assert git(repo, "ls-files", "--unmerged", "--", rel), "git lists the file as unmerged"
    assert f"UU {rel}" in git(repo, "status", "--porcelain").splitlines()
    check = run(["scripts/check-no-conflicts.sh"], cwd=repo, check=False, **GIT_ENV)
    assert check.returncode != 0
    assert f"  {rel}\n" in check.stderr and "Unmerged files" in check.stderr
    assert f"  {rel}:" in check.stderr, "the marker lines are named"
    # `make check` (what CI runs) fails too; a Makefile in conflict stops make at its first marker
    make = run(["make", "check"], cwd=repo, check=False, **GIT_ENV)
    assert make.returncode != 0
    assert ("Unmerged files" in make.stderr) != (rel == "Makefile"), make.stderr


def test_rej_mode_leftovers_are_refused(template_repo, tmp_path):
    """`--conflict rej` hides its .rej files from `git status` (.gitignore): the check finds them."""
    repo = template_repo.service(OLD, "go", "rolling", tmp_path / "service")
    append(repo / "Makefile", "\nteam-target: ## Ours\n\t@echo team\n")
    commit_all(repo, "Team target")

    copier_cli(repo, "update", "--trust", "--defaults", "--conflict", "rej")

    assert (repo / "Makefile.rej").exists()
    assert "Makefile.rej" not in git(repo, "status", "--porcelain")
    check = run(["scripts/check-no-conflicts.sh"], cwd=repo, check=False, **GIT_ENV)
    assert check.returncode != 0 and "Makefile.rej" in check.stderr


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_change_is_refused(template_repo, tmp_path, language):
    repo = template_repo.service(OLD, language, "rolling", tmp_path / "service")
    other = next(lang for lang in LANGUAGES if lang != language)

    proc = copier_cli(repo, "update", "--trust", "--defaults", "--data", f"language={other}", check=False)

    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert "Validation error for question 'language'" in message
    assert f"this repository is a {language} service" in message and "copier copy" in message
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == "", "nothing was changed"
    assert recorded(repo)["_commit"] == OLD


def test_recopy_cannot_change_the_language_either(template_repo, tmp_path):
    """recopy renders afresh over the repository, ignoring history: the recorded answer still holds."""
    repo = template_repo.service(NEW, "django", "rolling", tmp_path / "service")
    proc = copier_cli(repo, "recopy", "--trust", "--defaults", "--overwrite", "--data", "language=node",
                      check=False)
    assert proc.returncode != 0 and "this repository is a django service" in proc.stderr
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_check_update_tells_a_fleet_which_services_are_behind(template_repo, tmp_path):
    """The two forms docs/fleet.md relies on: JSON for reports, the exit code for scripts."""
    repo = template_repo.service(OLD, "go", "rolling", tmp_path / "service")
    report = copier_cli(repo, "check-update", "--output-format", "json")
    assert yaml.safe_load(report.stdout) == \
        {"update_available": True, "current_version": "0.1.0", "latest_version": "0.2.0"}
    assert copier_cli(repo, "check-update", "--quiet", check=False).returncode == 2

    copier_cli(repo, "update", "--trust", "--defaults")
    commit_all(repo, "Update from the template")
    assert copier_cli(repo, "check-update", "--quiet", check=False).returncode == 0


# ------------------------------------------------------------------------------------------------
# Changing the strategy through update converts the repository
# ------------------------------------------------------------------------------------------------
PAIRS = list(permutations(STRATEGIES, 2))


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_strategy_change_converts_repository(template_repo, tmp_path, old, new):
    language = LANGUAGES[PAIRS.index((old, new)) % len(LANGUAGES)]  # every language, every pair
    repo = template_repo.service(NEW, language, old, tmp_path / "service")
    before, after = template_repo.render(NEW, language, old), template_repo.render(NEW, language, new)
    old_only = sorted(files(before) - files(after))
    assert old_only, "each strategy has files of its own"
    append(repo / "README.md", TEAM_README)
    edited_old_file = old_only[0]
    append(repo / edited_old_file, "team edit\n")
    commit_all(repo, "Team work")

    copier_cli(repo, "update", "--trust", "--defaults", "--data", f"deployment_strategy={new}")

    conflict_free(repo)
    # the repository is now exactly a fresh render of the new strategy, plus the team's edit
    assert files(repo) == files(after)
    for rel in files(after) - {"README.md"}:
        assert (repo / rel).read_bytes() == (after / rel).read_bytes(), rel
    assert (repo / "README.md").read_text() == (after / "README.md").read_text() + TEAM_README
    answers = recorded(repo)
    assert answers["deployment_strategy"] == new
    assert ("canary_steps" in answers) == (new == "canary")
    # an old-strategy file goes even when edited (Copier's rule); git shows it and keeps the edit
    assert f" D {edited_old_file}" in git(repo, "status", "--porcelain").splitlines()
    assert git(repo, "show", f"HEAD:{edited_old_file}").endswith("team edit\n")


# ------------------------------------------------------------------------------------------------
# Migrations: the helpers in migrations/, run by Copier's own machinery on throwaway templates
# ------------------------------------------------------------------------------------------------
def release(tpl: Path, tag: str, tree: dict[str, str], questions: dict | None = None,
            migrations: list | None = None, executable: tuple[str, ...] = ()) -> None:
    """Commit and tag a release of a tiny template whose rendered files are exactly ``tree``."""
    if (tpl / "template").exists():
        shutil.rmtree(tpl / "template")
    for rel, text in tree.items():
        write(tpl / "template" / rel, text)
        if rel in executable:
            (tpl / "template" / rel).chmod(0o755)
    write(tpl / "template/{{ _copier_conf.answers_file }}.jinja", "{{ _copier_answers | to_nice_yaml }}")
    config = {"_subdirectory": "template", **(questions or {}), "_migrations": migrations or []}
    write(tpl / "copier.yml", yaml.safe_dump(config, sort_keys=False))
    shutil.copytree(ROOT / "migrations", tpl / "migrations", dirs_exist_ok=True)
    if not (tpl / ".git").exists():
        git(tpl, "init", "-q", "-b", "main")
    commit_all(tpl, f"release {tag}")
    git(tpl, "tag", tag)


def helper(name: str, stage: str, version: str, *args: str) -> dict:
    return {"version": version, "when": f"{{{{ _stage == '{stage}' }}}}",
            "command": ["{{ _copier_python }}", f"{{{{ _copier_conf.src_path }}}}/migrations/{name}", *args]}


def test_migration_moves_a_file_with_the_team_edits(tmp_path):
    tpl, repo = tmp_path / "template", tmp_path / "service"
    lines = "".join(f"line {i}\n" for i in range(1, 13))
    release(tpl, "v1", {"deploy/old.sh": lines}, executable=("deploy/old.sh",))
    copier.run_copy(str(tpl), str(repo), defaults=True, unsafe=True, quiet=True)
    init_repo(repo, "generated")
    (repo / "deploy/old.sh").write_text(lines.replace("line 2\n", "line 2 (team)\n"))
    commit_all(repo, "team edit")
    # v2 moves the file, and only moves it (the policy for a move)
    release(tpl, "v2", {"deploy/new.sh": lines}, executable=("deploy/new.sh",),
            migrations=[helper("move_path.py", "after", "v2", "deploy/old.sh", "deploy/new.sh")])

    copier_cli(repo, "update", "--trust", "--defaults")

    assert [p for p in files(repo) if markers(repo / p)] == []
    assert not (repo / "deploy/old.sh").exists()
    assert (repo / "deploy/new.sh").read_text() == lines.replace("line 2\n", "line 2 (team)\n")
    assert os.access(repo / "deploy/new.sh", os.X_OK), "the file mode moves too"
    git(repo, "add", "-A")
    assert "R  deploy/old.sh -> deploy/new.sh" in git(repo, "status", "--porcelain").splitlines()
    git(repo, "commit", "-q", "--no-verify", "-m", "update to v2")

    # later releases merge at the new path as usual, and the v2 migration does not run again
    release(tpl, "v3", {"deploy/new.sh": lines.replace("line 11\n", "line 11 (v3)\n")},
            executable=("deploy/new.sh",),
            migrations=[helper("move_path.py", "after", "v2", "deploy/old.sh", "deploy/new.sh")])
    copier_cli(repo, "update", "--trust", "--defaults")
    text = (repo / "deploy/new.sh").read_text()
    assert "line 2 (team)\n" in text and "line 11 (v3)\n" in text


def test_migration_renames_an_answer(tmp_path):
    tpl, repo = tmp_path / "template", tmp_path / "service"
    release(tpl, "v1", {"owner.txt.jinja": "{{ team }}\n"}, questions={"team": {"type": "str"}})
    copier.run_copy(str(tpl), str(repo), data={"team": "payments"}, defaults=True, unsafe=True, quiet=True)
    init_repo(repo, "generated")
    # v2 renames the question `team` to `owning_team`: the recorded answer follows
    release(tpl, "v2", {"owner.txt.jinja": "{{ owning_team }}\n"}, questions={"owning_team": {"type": "str"}},
            migrations=[helper("rename_answer.py", "before", "v2", "team", "owning_team")])

    copier_cli(repo, "update", "--trust", "--defaults")

    assert (repo / "owner.txt").read_text() == "payments\n"
    answers = recorded(repo)
    assert answers["owning_team"] == "payments" and answers["_commit"] == "v2"


# The v0.1.0 migration: blue-green's and canary's two Deployment files became one (server/)
ONE_DEPLOYMENT = "v0.1.0"
BEFORE_ONE_DEPLOYMENT = "v0.0.9"
TRACKS = {"blue-green": ("colour", "blue", "green"), "canary": ("track", "stable", "canary")}
TEAM_ENV = '            - name: TEAM_FLAG\n              value: "on"\n'


def two_deployment_files(tpl: Path) -> None:
    """The layout before v0.1.0: one file per colour or track, each calling deployment()."""
    for strategy, (key, serving, idle) in TRACKS.items():
        base = tpl / "template/deploy/k8s/base" / strategy
        for value, replicas in ((serving, 2), (idle, 0)):
            write(base / f"deployment-{value}.yaml.jinja",
                  "{%- from 'includes/k8s/workload.jinja' import deployment with context -%}\n"
                  "# Managed by the template: `copier update` merges template changes into this file.\n"
                  f"{{{{ deployment(name=project_slug ~ '-{value}', extra_labels={{'{key}': '{value}'}}, "
                  f"replicas={replicas}) }}}}\n")
            shutil.rmtree(base / value)
        shutil.rmtree(base / "server")
        kustomization = base / "kustomization.yaml"
        kustomization.write_text(kustomization.read_text().replace(
            f"  - {serving}\n  - {idle}\n", f"  - deployment-{serving}.yaml\n  - deployment-{idle}.yaml\n"))


@pytest.mark.parametrize(("language", "strategy"), [("go", "blue-green"), ("node", "canary")])
def test_migration_refuses_to_delete_an_edited_deployment_file(tmp_path, language, strategy):
    """Copier deletes a file the release no longer renders even when the team edited it. The
    v0.1.0 migration stops such an update, changing nothing, names the file and saves the edits;
    without edits (or once they are undone) the update goes through and builds the same objects."""
    tpl = tmp_path / "template"
    snapshot_checkout(tpl)
    two_deployment_files(tpl)
    init_repo(tpl, "Template with one file per Deployment")
    git(tpl, "tag", BEFORE_ONE_DEPLOYMENT)
    snapshot_checkout(tpl)
    for strategy_name, (_, serving, idle) in TRACKS.items():
        for value in (serving, idle):
            (tpl / f"template/deploy/k8s/base/{strategy_name}/deployment-{value}.yaml.jinja").unlink()
    commit_all(tpl, "Template with one Deployment per strategy")
    git(tpl, "tag", ONE_DEPLOYMENT)

    repo = tmp_path / "service"
    copier.run_copy(str(tpl), str(repo), vcs_ref=BEFORE_ONE_DEPLOYMENT, defaults=True, unsafe=True, quiet=True,
                    data={"language": language, "deployment_strategy": strategy})
    init_repo(repo, "generated")
    base = f"deploy/k8s/base/{strategy}"
    idle_file = repo / base / f"deployment-{TRACKS[strategy][2]}.yaml"
    unedited = idle_file.read_text()
    idle_file.write_text(unedited.replace("          env:\n", "          env:\n" + TEAM_ENV, 1))
    commit_all(repo, "Team edit in one Deployment")
    built_before = run(["kubectl", "kustomize", "deploy/k8s/overlays/production"], cwd=repo).stdout

    refused = copier_cli(repo, "update", "--trust", "--defaults", "--vcs-ref", ONE_DEPLOYMENT, check=False)
    assert refused.returncode != 0
    assert f"{base}/deployment-{TRACKS[strategy][2]}.yaml (its content is now in {base}/server/deployment.yaml)" \
        in refused.stderr, refused.stderr
    # the helper's message, between Copier's lines that repeat the command
    message = refused.stderr.split("copier update stopped before changing anything.", 1)[1].split("\nTask [")[0]
    assert f"deployment-{TRACKS[strategy][1]}.yaml" not in message, "an unedited file is not named"
    assert "+" + TEAM_ENV.splitlines()[0] in message, "the edits are shown"
    assert git(repo, "status", "--porcelain") == "", "a refused update changes nothing"
    assert recorded(repo)["_commit"] == BEFORE_ONE_DEPLOYMENT
    saved = Path(message.split("also saved to ", 1)[1].split(":\n", 1)[0])

    # the steps the message gives: undo, update, make the edit once in server/deployment.yaml
    git(repo, "apply", "-R", str(saved))
    assert idle_file.read_text() == unedited
    commit_all(repo, "Undo the edit before the update")
    built_unedited = run(["kubectl", "kustomize", "deploy/k8s/overlays/production"], cwd=repo).stdout
    copier_cli(repo, "update", "--trust", "--defaults", "--vcs-ref", ONE_DEPLOYMENT)
    conflict_free(repo)
    assert not idle_file.exists() and (repo / base / "server/deployment.yaml").is_file()
    assert recorded(repo)["_commit"] == ONE_DEPLOYMENT
    built_after = run(["kubectl", "kustomize", "deploy/k8s/overlays/production"], cwd=repo).stdout

    def objects(text: str) -> dict:
        return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(text) if o}

    assert objects(built_after) == objects(built_unedited), "the new layout builds the same objects"
    run(["patch", f"{base}/server/deployment.yaml", str(saved)], cwd=repo)
    rebuilt = objects(run(["kubectl", "kustomize", "deploy/k8s/overlays/production"], cwd=repo).stdout)
    with_edit = [name for (kind, name), o in rebuilt.items() if kind == "Deployment" and "TEAM_FLAG" in str(o)]
    assert len(with_edit) == 2, f"the edit made once reaches both Deployments: {with_edit}"
    assert "TEAM_FLAG" in built_before
    saved.unlink()


# ------------------------------------------------------------------------------------------------
# Consistency of the update settings
# ------------------------------------------------------------------------------------------------
def template_config() -> dict:
    return yaml.safe_load((ROOT / "copier.yml").read_text())


def test_skip_if_exists_is_each_seeded_folder_of_the_facts_table():
    """One entry per facts row, rendered from the table (no path written twice)."""
    assert template_config()["_skip_if_exists"] == [f"{{{{ FACTS.{language}.seeded_dir }}}}/**" for language in FACTS]


def test_seeded_folder_holds_only_the_languages_own_code(project):
    """No managed file lies in a seeded folder, and no language renders another's seeded folder."""
    rendered = [p.as_posix() for p in project.files()]
    for language, row in FACTS.items():
        inside = [p for p in rendered if p.startswith(row["seeded_dir"] + "/")]
        if language != project.language:
            assert inside == [], f"{project}: {inside} would be left alone by updates"


def test_min_copier_version_is_met_by_the_pinned_copier():
    from packaging.version import Version

    pins = dict(line.split("==") for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert Version(pins["copier"]) >= Version(template_config()["_min_copier_version"])
    assert Version(copier.__version__) >= Version(template_config()["_min_copier_version"])


@pytest.mark.parametrize(("recorded_text", "refused"), [
    (None, False),                            # a first copy: nothing recorded yet
    ("language: go\n", False),                # the same language
    ("language: django\n", True),             # another one
    ("project_name: x\n", False),             # an answers file without a language
    (": not yaml: [\n", False),               # unreadable: Copier itself reports it
])
def test_language_change_error(tmp_path, recorded_text, refused):
    if recorded_text is not None:
        (tmp_path / ".copier-answers.yml").write_text(recorded_text)
    message = language_change_error("go", tmp_path, ".copier-answers.yml", languages=tuple(FACTS))
    assert bool(message) == refused
    if refused:
        assert "django service" in message and "new repository" in message


def test_every_migration_is_versioned_staged_and_uses_a_helper():
    for migration in template_config().get("_migrations") or []:
        assert {"version", "when", "command"} <= migration.keys(), migration
        assert "_stage ==" in migration["when"], migration
        script = migration["command"][1].replace("{{ _copier_conf.src_path }}/", "")
        assert (ROOT / script).is_file(), f"{script} does not exist"


def test_check_script_passes_on_every_fresh_render(project, tmp_path):
    """Managed files never trip the conflict check themselves (in git or in an exported tree)."""
    repo = project.clone_to(tmp_path / "service").path
    run(["scripts/check-no-conflicts.sh"], cwd=repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    run(["scripts/check-no-conflicts.sh"], cwd=repo, **GIT_ENV)
    run(["shellcheck", "scripts/check-no-conflicts.sh"], cwd=repo)


def test_pre_commit_hook_refuses_conflict_markers_and_rej_files(private_render, tmp_path):
    repo = private_render(language="go").path
    init_repo(repo, "generated")
    env = {**GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    clean = run(["pre-commit", "run", "--all-files"], cwd=repo, check=False, **env)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    append(repo / "README.md", f"\n{MARKERS[0]}\nours\n=======\ntheirs\n{MARKERS[1]}\n")
    write(repo / "Dockerfile.rej", "@@ -1 +1 @@\n-old\n+new\n")
    git(repo, "add", "-f", "README.md", "Dockerfile.rej")
    refused = run(["pre-commit", "run"], cwd=repo, check=False, **env)
    assert refused.returncode != 0
    assert "README.md: conflict markers" in refused.stdout and "Dockerfile.rej" in refused.stdout


# ------------------------------------------------------------------------------------------------
# The rendered template-update workflow, its two jobs run as GitHub runs them
# ------------------------------------------------------------------------------------------------
def test_template_update_workflow_proposes_read_only_and_applies_without_template_code(template_repo, tmp_path):
    """`propose` runs the real `copier update` and hands over a patch; `pull-request`, in a fresh
    clone with no copier on PATH, applies it and gets exactly the updated tree."""
    from test_workflows import load, run_script, step_named  # noqa: PLC0415 - the workflow helpers

    repo = template_repo.service(OLD, "go", "rolling", tmp_path / "service")
    insert_after_first_line(repo / "Makefile", TEAM_MAKEFILE_LINE)
    # where v0.2.0 inserts its own line: a conflict the pull request must list
    insert_after_first_line(repo / "README.md", "\nThe team wrote this line.\n")
    commit_all(repo, "Team edits")
    workflow = load(repo / ".github/workflows/template-update.yml")
    artifact, outputs = tmp_path / "artifact", tmp_path / "github-output"
    outputs.write_text("")
    proposed = run_script(step_named(workflow["jobs"]["propose"], "copier update")["run"], repo,
                          OUT=str(artifact), GITHUB_OUTPUT=str(outputs), TEMPLATE_REF=NEW, **GIT_ENV)
    assert proposed.returncode == 0, proposed.stderr
    assert outputs.read_text() == "changed=true\n"
    commit = git(template_repo.path, "rev-parse", f"{NEW}^{{commit}}").strip()
    assert (artifact / "title.txt").read_text() == f"Update from the template: {OLD} to {NEW}\n"
    body = (artifact / "body.md").read_text()
    assert f"`{OLD}` to `{NEW}` (commit `{commit}`) of {template_repo.path}" in body
    assert f"CHANGELOG.md of {template_repo.path} at {NEW}" in body and "```\nREADME.md\n```" in body
    assert markers(repo / "README.md"), "the conflict is in the tree the pull request carries"

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(repo), str(clone))
    outputs.write_text("")
    applied = run_script(step_named(workflow["jobs"]["pull-request"], "Apply the patch")["run"], clone,
                         IN=str(artifact), GITHUB_OUTPUT=str(outputs), PATH="/usr/bin:/bin")
    assert applied.returncode == 0, applied.stderr
    assert outputs.read_text() == f"title=Update from the template: {OLD} to {NEW}\n"
    assert files(clone) == files(repo)
    for rel in files(repo):
        assert (clone / rel).read_bytes() == (repo / rel).read_bytes(), rel
    assert TEAM_MAKEFILE_LINE in (clone / "Makefile").read_text(), "the team's edit survives"
    assert recorded(clone)["_commit"] == NEW

    # merged: the next run finds nothing to do
    commit_all(clone, "Update from the template")
    outputs.write_text("")
    again = run_script(step_named(workflow["jobs"]["propose"], "copier update")["run"], clone,
                       OUT=str(tmp_path / "again"), GITHUB_OUTPUT=str(outputs), TEMPLATE_REF=NEW, **GIT_ENV)
    assert again.returncode == 0 and outputs.read_text() == "changed=false\n", again.stderr
