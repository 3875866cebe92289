"""Migration helper: rename a question's key in the answers file (run in the `before` stage).

    _migrations:
      - version: v1.2.0
        when: "{{ _stage == 'before' }}"
        command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/migrations/rename_answer.py",
                  "old_key", "new_key"]

Copier reloads the answers file after the `before` stage, so the recorded answer is kept under
its new name instead of being asked again or replaced by the default. Runs with Copier's own
Python (`_copier_python`): the standard library and PyYAML only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"


def rename_answer(answers_file: Path, old: str, new: str) -> str:
    """Rename ``old`` to ``new`` in place; returns what was done, for the update's log."""
    answers = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    if old not in answers:
        return f"{answers_file}: no answer {old!r} to rename"
    if new in answers:
        # Someone already answered under the new name: that answer wins, the stale one goes.
        del answers[old]
        return f"{answers_file}: kept {new!r}, dropped the stale {old!r}"
    # Keep the order of the keys (the answers file is reviewed in diffs).
    answers = {(new if key == old else key): value for key, value in answers.items()}
    answers_file.write_text(HEADER + yaml.safe_dump(answers, sort_keys=False, allow_unicode=True),
                            encoding="utf-8")
    return f"{answers_file}: renamed answer {old!r} to {new!r}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--answers-file", type=Path, default=Path(".copier-answers.yml"))
    args = parser.parse_args(argv)
    print(rename_answer(args.answers_file, args.old, args.new), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
