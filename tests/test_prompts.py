"""The questions at copier's interactive prompt, in a real terminal (a pseudo-terminal driven by
pexpect), answered as a person does: Ctrl-U to clear the prefilled default, type, Enter; arrow keys
in a list; y or n for yes/no. A refused answer shows the rule and asks again; the answers file
of the render then holds what was typed, with the port as an integer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect  # pinned in requirements-dev.txt, with pyte
import pyte
import pytest
import yaml
from helpers import ROOT, VENV_BIN

sys.path.insert(0, str(ROOT))
from extensions.validators import port_error, port_number

DOWN = "\x1b[B"  # the down-arrow key
CTRL_U = "\x15"  # clear the line (unix-line-discard), what a person does to a prefilled default
ENTER = "\r"
ROWS, COLUMNS = 50, 250  # wide enough that no message wraps


def words(text: str) -> re.Pattern[str]:
    """The words of ``text``, with any run of blanks between them."""
    return re.compile(r"\s+".join(re.escape(word) for word in text.split()))


QMARK = "\N{MICROPHONE}"  # copier's mark before each question
QUIET = 1.5  # seconds without output: copier waits for a key


class Prompt:
    """copier copy of this template (HEAD, with the working tree's changes) in a pseudo-terminal.

    What the person sees is read from a terminal emulator (pyte) fed with copier's output:
    prompt_toolkit redraws only what changed, so a message is rarely one run of the raw output.
    A question the test does not name (one added to copier.yml later) gets Enter, its default."""

    def __init__(self, dst: Path, log: Path):
        env = {**os.environ, "TERM": "xterm-256color",
               "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
        self.child = pexpect.spawn(
            str(VENV_BIN / "copier"), ["copy", "--trust", "--vcs-ref", "HEAD", str(ROOT), str(dst)],
            env=env, encoding="utf-8", timeout=60, dimensions=(ROWS, COLUMNS),
        )
        self.child.logfile_read = log.open("w", encoding="utf-8")
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.Stream(self.screen)
        self.ended = False
        self.answered = ""  # the help text of the question the test last waited for
        self.defaulted: list[str] = []  # the questions the test did not name, answered with Enter

    def shown(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def pending(self) -> str:
        """The newest question line on the screen."""
        return next((line for line in reversed(self.screen.display) if QMARK in line), "")

    def _pump(self, done, timeout: float, default_others: bool) -> None:
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while not done():
            if self.ended or time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting; the screen:\n{self.shown()}")
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.2))
                quiet_since = time.monotonic()
            except pexpect.TIMEOUT:
                question = self.pending()
                if (default_others and time.monotonic() - quiet_since > QUIET and question
                        and not (self.answered and words(self.answered).search(question))):
                    self.defaulted.append(question)
                    self.send(ENTER)
                    quiet_since = time.monotonic()
            except pexpect.EOF:
                self.ended = True

    def question(self, help_text: str, timeout: float = 60) -> None:
        """Wait for the question whose help starts with ``help_text``."""
        pattern = words(help_text)
        self._pump(lambda: bool(pattern.search(self.shown())), timeout, default_others=True)
        self.answered = help_text

    def shows(self, text: str, timeout: float = 60) -> None:
        """Wait until ``text`` is on the screen (a refusal: the same question waits)."""
        pattern = words(text)
        self._pump(lambda: bool(pattern.search(self.shown())), timeout, default_others=False)

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def type(self, text: str) -> None:
        """Clear the prefilled default, type ``text``, press Enter."""
        self.send(CTRL_U + text + ENTER)

    def finish(self) -> str:
        """Wait for copier to end; what the screen shows then."""
        self._pump(lambda: self.ended, 300, default_others=True)
        self.child.close()
        assert self.child.exitstatus == 0, self.shown()
        return self.shown()


def answers(dst: Path) -> dict:
    return yaml.safe_load((dst / ".copier-answers.yml").read_text())


def test_every_kind_of_question_takes_what_a_person_types(tmp_path):
    dst = tmp_path / "svc"
    prompt = Prompt(dst, tmp_path / "terminal.log")
    # free text: clear the default, type
    prompt.question("Human-readable name of the service")
    prompt.type("Payments API (EU)")
    prompt.question("Machine name")
    prompt.send(ENTER)  # the default, derived from the name
    prompt.question("One sentence saying what the service does")
    prompt.type("Takes card payments")
    prompt.question("GitHub user or organisation")
    prompt.type("acme")
    # a choice: the arrow keys, then Enter
    prompt.question("Language and framework of the service")
    prompt.send(DOWN + DOWN + ENTER)  # node, go, django
    prompt.question("Python version of the image and CI")
    prompt.send(DOWN + ENTER)  # the second version offered
    # the port: refused answers show the rule and ask again; an accepted one moves on
    prompt.question("TCP port the service listens on")
    prompt.type("80")
    prompt.shows("Validation error for question 'port': must be between 1024 and 65535")
    prompt.type("abc")
    prompt.shows("must be a whole number from 1024 to 65535, such as 8080, got 'abc'")
    prompt.type("9123")
    prompt.question("How a new version reaches users")
    prompt.send(DOWN + DOWN + ENTER)  # rolling, blue-green, canary
    prompt.question("Canary traffic percentages")
    prompt.type("10,50,25,100")
    prompt.shows("percentages must be strictly increasing")
    prompt.type("5,50,100")
    # yes/no: one key
    prompt.question("Deploy each same-repository pull request")
    prompt.send("n")
    shown = prompt.finish()

    assert words("serves it on port 9123").search(shown), shown
    recorded = answers(dst)
    assert {key: recorded[key] for key in (
        "project_name", "project_slug", "description", "github_owner", "language", "python_version",
        "port", "deployment_strategy", "canary_steps", "preview_deploys",
    )} == {
        "project_name": "Payments API (EU)",
        "project_slug": "payments-api-eu",
        "description": "Takes card payments",
        "github_owner": "acme",
        "language": "django",
        "python_version": "3.13",
        "port": 9123,  # an integer, as `--data port=9123` records it
        "deployment_strategy": "canary",
        "canary_steps": "5,50,100",
        "preview_deploys": False,
    }
    assert "PORT ?= 9123" in (dst / "Makefile").read_text()


def test_enter_at_every_prompt_takes_the_defaults(tmp_path):
    """The prefilled values are the defaults, one line each: Enter alone accepts them."""
    dst = tmp_path / "svc"
    prompt = Prompt(dst, tmp_path / "terminal.log")
    for question in ("Human-readable name", "Machine name", "One sentence", "GitHub user",
                     "Language and framework", "Node.js release line", "TCP port", "How a new version",
                     "Deploy each same-repository pull request"):
        prompt.question(question)
        prompt.send(ENTER)
    prompt.finish()
    recorded = answers(dst)
    assert recorded["port"] == 3000 and recorded["language"] == "node"
    assert recorded["preview_deploys"] is True and recorded["project_slug"] == "my-service"


# ------------------------------------------------------------------------------------------------
# The same question without a terminal: `--data` as automation passes it
# ------------------------------------------------------------------------------------------------
def copy_with_data(dst: Path, *data: str) -> subprocess.CompletedProcess[str]:
    args = [arg for pair in data for arg in ("--data", pair)]
    return subprocess.run([str(VENV_BIN / "copier"), "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
                           *args, str(ROOT), str(dst)], check=False, capture_output=True, text=True,
                          timeout=300)


def test_data_port_abc_is_refused_with_the_question_named(tmp_path):
    proc = copy_with_data(tmp_path / "svc", "port=abc")
    assert proc.returncode != 0
    # copier prints its traceback for any refused --data answer; the last line names the question
    # and the rule (with `type: int` it was int()'s "invalid literal for int() with base 10: 'abc'")
    assert proc.stderr.strip().splitlines()[-1] == (
        "ValueError: Validation error for question 'port': must be a whole number from 1024 to 65535, "
        "such as 8080, got 'abc'"), proc.stderr
    assert not (tmp_path / "svc").exists()


def test_data_port_is_recorded_and_rendered_as_an_integer(tmp_path):
    dst = tmp_path / "svc"
    proc = copy_with_data(dst, "language=go", "port=8081")
    assert proc.returncode == 0, proc.stderr
    assert answers(dst)["port"] == 8081  # an integer in .copier-answers.yml, not '8081'
    assert "PORT ?= 8081" in (dst / "Makefile").read_text()
    assert "EXPOSE 8081" in (dst / "Dockerfile").read_text()
    assert "const DefaultPort = 8081" in (dst / "internal" / "config" / "config.go").read_text()
    deployment = (dst / "deploy" / "k8s" / "base" / "rolling" / "deployment.yaml").read_text()
    assert re.search(r"containerPort: 8081$", deployment, re.MULTILINE)
    assert "8081" in (dst / "compose.yaml").read_text()


@pytest.mark.parametrize(("value", "number"), [
    (8080, 8080), ("8080", 8080), (" 9123\t", 9123), ("80", 80),
    ("abc", None), ("", None), ("80.5", None), ("+8080", None), ("-1", None), ("8 080", None),
    ("\u0668\u0660\u0668\u0660", None),  # Arabic-Indic digits: int() takes them, a port does not
    (True, None), (None, None), (8080.0, None),
])
def test_port_number_takes_digits_only(value, number):
    assert port_number(value) == number
    assert bool(port_error(value)) == (number is None or not 1024 <= number <= 65535)
