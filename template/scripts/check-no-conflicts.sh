#!/usr/bin/env bash
# Managed by the template. Refuses what an unfinished `copier update` leaves behind, so that no
# conflict is ever committed unnoticed: conflict markers, files git still lists as unmerged, and
# .rej files (from `copier update --conflict rej`, hidden from `git status` by .gitignore).
#
#   scripts/check-no-conflicts.sh          the whole repository (make check-conflicts, make check, CI)
#   scripts/check-no-conflicts.sh FILE...  only these files (the pre-commit hook passes staged files)
set -euo pipefail

# A line that starts with 7 '<' or 7 '>' then a space or nothing: git's and Copier's markers
# (`<<<<<<< before updating` ... `>>>>>>> after updating`).
marker='^(<{7}|>{7})( |$)'
found=0

report() {
  found=1
  printf '%s\n' "$@" >&2
}

if [ "$#" -gt 0 ]; then
  for file in "$@"; do
    case "$file" in
      *.rej) report "$file: a rejected hunk from a template update; apply it by hand, then delete the file" ;;
    esac
    if [ -f "$file" ] && hits=$(grep -n -I -E "$marker" -- "$file"); then
      report "$file: conflict markers at line(s) $(printf '%s' "$hits" | cut -d: -f1 | paste -sd, -)"
    fi
  done
elif top=$(git rev-parse --show-toplevel 2>/dev/null); then
  cd "$top"
  unmerged=$(git ls-files --unmerged | cut -f2 | sort -u)
  if [ -n "$unmerged" ]; then
    report "Unmerged files (resolve the conflicts, then \`git add\` each file):" \
      "$(printf '%s' "$unmerged" | sed 's/^/  /')"
  fi
  # Tracked and untracked files alike, ignored ones included (.gitignore hides *.rej), but not
  # in installed dependencies.
  rejects=$(git ls-files --cached --others -- '*.rej' \
    ':(exclude,glob)**/node_modules/**' ':(exclude,glob)**/.venv/**')
  if [ -n "$rejects" ]; then
    report "Rejected hunks from a template update (apply each by hand, then delete the file):" \
      "$(printf '%s' "$rejects" | sed 's/^/  /')"
  fi
  # Tracked files and new files not yet added (ignored ones are not the repository's); binary
  # files are skipped.
  hits=$(git grep --untracked -n -I -E "$marker" -- . ':!*.rej' || true)
  if [ -n "$hits" ]; then
    report "Conflict markers (keep the lines you need and delete the markers):" \
      "$(printf '%s' "$hits" | cut -d: -f1,2 | sed 's/^/  /')"
  fi
else
  # Not a git checkout (an exported tree): look at the files on disk, dependencies aside.
  cd "$(dirname "$0")/.."
  prune=(-name .git -o -name node_modules -o -name .venv -o -name dist -o -name bin)
  rejects=$(find . \( "${prune[@]}" \) -prune -o -type f -name '*.rej' -print)
  if [ -n "$rejects" ]; then
    report "Rejected hunks from a template update (apply each by hand, then delete the file):" \
      "$(printf '%s' "$rejects" | sed 's/^/  /')"
  fi
  # grep exits 1 when a batch has no match: judge by the output, not by the exit code.
  hits=$(find . \( "${prune[@]}" \) -prune -o -type f ! -name '*.rej' -print0 \
    | xargs -0 grep -n -I -E "$marker" -- /dev/null || true)
  if [ -n "$hits" ]; then
    report "Conflict markers (keep the lines you need and delete the markers):" \
      "$(printf '%s' "$hits" | cut -d: -f1,2 | sed 's/^/  /')"
  fi
fi

if [ "$found" -ne 0 ]; then
  echo "Resolve the template update first: README.md, \"Updating from the template\"." >&2
  exit 1
fi
