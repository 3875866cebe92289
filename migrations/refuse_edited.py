"""Migration helper: stop an update that would delete managed files the team edited (`before` stage).

    _migrations:
      - version: v1.2.0
        when: "{{ _stage == 'before' }}"
        command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/migrations/refuse_edited.py",
                  "--template", "{{ _copier_conf.src_path }}",
                  "--answers-file", "{{ _copier_conf.answers_file }}",
                  "deploy/old-a.yaml=deploy/new.yaml", "deploy/old-b.yaml=deploy/new.yaml"]

Each argument is OLD=NEW: OLD is a managed file the release no longer renders, NEW the file where
its content now lives. Copier removes a file the release no longer renders even when the team
edited it (docs/updating.md): no conflict, the edit is simply gone from the working tree. When the
content did not move one to one (two files became one, so `move_path.py` cannot carry it), this
helper renders the previous release with the recorded answers and compares: if an OLD file differs
from that render, it stops the update before anything is written (Copier runs `before` migrations
ahead of its merge) with a message naming the files, the team's edits as a patch (also saved to a
file outside the repository) and the steps: undo the edits, update, make them once in NEW.

OLD files that do not exist (another strategy, or deleted by the team) are not checked, and when
none exists nothing is rendered. Runs with Copier's own Python (`_copier_python`), which has
Copier and the template's extensions: the previous release renders as `copier update` renders it.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path

import yaml


def previous_render(template: str, answers_file: Path, dst: Path) -> None:
    """Render the release the repository was last updated to, with its recorded answers."""
    # Copier's own Python has Copier; imported here, only when a file is to be compared
    import copier

    recorded = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    # VERSION_FROM: set by Copier for migrations; the answers file records the same commit
    ref = os.environ.get("VERSION_FROM") or recorded.get("_commit")
    data = {key: value for key, value in recorded.items() if not key.startswith("_")}
    copier.run_copy(template, str(dst), data=data, vcs_ref=ref, defaults=True, overwrite=True,
                    quiet=True, unsafe=True, skip_tasks=True, answers_file=answers_file.as_posix())


def edits(pairs: list[tuple[str, str]], template: str, answers_file: Path) -> list[tuple[str, str, str]]:
    """(old, new, the team's edits as a patch) for every OLD file that differs from its render."""
    present = [(old, new) for old, new in pairs if Path(old).is_file()]
    if not present:
        return []
    found = []
    with tempfile.TemporaryDirectory(prefix="previous-release.") as tmp:
        previous_render(template, answers_file, Path(tmp))
        for old, new in present:
            rendered = Path(tmp, old)
            before = rendered.read_text(encoding="utf-8").splitlines(keepends=True) \
                if rendered.is_file() else []
            after = Path(old).read_text(encoding="utf-8").splitlines(keepends=True)
            if before != after:
                patch = "".join(difflib.unified_diff(before, after, f"a/{old}", f"b/{old}"))
                found.append((old, new, patch))
    return found


def message(found: list[tuple[str, str, str]], saved: str) -> str:
    lines = ["copier update stopped before changing anything. This release no longer renders these",
             "files, and Copier would delete them with the edits made here:"]
    lines += [f"  {old} (its content is now in {new})" for old, new, _ in found]
    targets = sorted({new for _, new, _ in found})
    lines += [
        "",
        f"Your edits, also saved to {saved}:",
        "",
        *("".join(patch for _, _, patch in found).rstrip("\n").splitlines()),
        "",
        "To update without losing them:",
        f"  1. undo them and commit: git apply -R {saved}",
        "  2. run the same copier update again",
        "  3. make each edit once, then commit, in the file that now serves what the deleted ones did:",
        *(f"       {target}" for target in targets),
        f"     (`patch FILE < {saved}` often applies them there).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", metavar="OLD=NEW",
                        help="a file the release deletes = the file that now holds its content")
    parser.add_argument("--template", required=True, help="the template (Copier's _copier_conf.src_path)")
    parser.add_argument("--answers-file", type=Path, default=Path(".copier-answers.yml"))
    args = parser.parse_args(argv)
    pairs = [tuple(pair.split("=", 1)) for pair in args.pairs]
    if any(len(pair) != 2 for pair in pairs):
        parser.error("each argument is OLD=NEW")
    found = edits(pairs, args.template, args.answers_file)  # type: ignore[arg-type]
    if not found:
        return 0
    fd, saved = tempfile.mkstemp(prefix="template-update-edits-", suffix=".patch")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("".join(patch for _, _, patch in found))
    print(message(found, saved), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
