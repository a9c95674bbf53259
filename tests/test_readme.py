"""The README's command lines are what the CLI accepts: each `plastix train` / `plastix sweep` example is
validated with --check (no training), commands that need no data run, and the ones that read a run
directory or a file the README only names show their --help."""

import re
import shlex
from pathlib import Path

import pytest

from plastix.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def _examples() -> list[str]:
    lines, text = [], README.read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("plastix "):
                lines.append(line)
    return lines


def test_readme_has_cli_examples():
    assert len(_examples()) >= 10


@pytest.mark.parametrize("line", _examples())
def test_readme_example_is_accepted(line, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing an example writes lands in the checkout
    words = shlex.split(line)[1:]
    command = words[0]
    names_missing = any("<" in w or w.endswith((".yaml", ".json")) for w in words) or command in (
        "analyze", "evaluate")
    if command in ("train", "sweep") and not names_missing:
        assert main(words + ["--check"]) == 0, capsys.readouterr()
        assert "ok:" in capsys.readouterr().out
    elif command in ("recipes", "envs") and not names_missing:
        assert main(words) == 0
    else:
        sub = words[1:2] if words[1:2] in (["representations"], ["thc"]) else []
        try:
            code = main([command, *sub, "--help"])
        except SystemExit as exit_:
            code = exit_.code
        assert code == 0
