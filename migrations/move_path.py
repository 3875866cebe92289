"""Migration helper: carry the team's version of a moved file or folder to its new path (`after` stage).

    _migrations:
      - version: v1.2.0
        when: "{{ _stage == 'after' }}"
        command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/migrations/move_path.py",
                  "deploy/old-name.yaml", "deploy/new-name.yaml"]

Why the `after` stage: Copier computes the team's edits against a fresh render of the *old*
release, where the file still has its old path. Moving it before the update turns every line
into an add/add conflict; after the update, the new path holds the new release's render and the
old path is gone from the working tree, while HEAD still holds the team's version. This helper
writes that version (file mode kept) to the new path, so the move shows in `git status` as a
rename with the team's edits. The release that moves a file must not also change its content
(docs/updating.md, "Migrations"): the team's version replaces the render at the new path.

If the team had deleted the old path, the new one is deleted too: a deleted file stays deleted.
Standard library only: runs with Copier's own Python (`_copier_python`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], check=True, capture_output=True).stdout


def move_path(old: str, new: str) -> list[str]:
    """Write HEAD's version of ``old`` (a file or a folder) at ``new``; returns what was done."""
    entries = git("ls-tree", "-r", "-z", "HEAD", "--", old).split(b"\0")
    done: list[str] = []
    for entry in filter(None, entries):
        meta, path = entry.decode().split("\t", 1)
        mode, _kind, sha = meta.split()
        rel = PurePosixPath(path).relative_to(old)
        target = Path(new, rel) if rel.parts else Path(new)
        target.parent.mkdir(parents=True, exist_ok=True)
        blob = git("cat-file", "blob", sha)
        if target.is_symlink() or target.exists():
            target.unlink()
        if mode == "120000":
            os.symlink(blob.decode(), target)
        else:
            target.write_bytes(blob)
            target.chmod(0o755 if mode == "100755" else 0o644)
        done.append(f"{path} -> {target.as_posix()}")
    if not done and Path(new).exists():
        # The team had deleted the old path: keep it deleted under its new name as well.
        if Path(new).is_dir():
            shutil.rmtree(new)
        else:
            Path(new).unlink()
        done.append(f"{old} was deleted in this repository: {new} removed as well")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="path before the move, relative to the repository root")
    parser.add_argument("new", help="path after the move")
    args = parser.parse_args(argv)
    for line in move_path(args.old.rstrip("/"), args.new.rstrip("/")):
        print(f"moved {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
