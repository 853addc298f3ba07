"""``sklearn-ddpm --help`` imports no heavy library: torch, diffusers, scikit-learn and skorch load
only in the sub-command that needs them."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sklearn_ddpm
from sklearn_ddpm import cli

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "sklearn", "skorch", "transformers", "matplotlib")


def _loaded_after(code):
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_and_the_parser_import_no_heavy_library():
    assert _loaded_after("""
        import contextlib, io
        import sklearn_ddpm.cli
        sklearn_ddpm.cli.build_parser(for_argv=["--help"])
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                sklearn_ddpm.cli.main(["--help"])
            except SystemExit:
                pass
        """) == []


def test_importing_the_package_imports_no_heavy_library():
    assert _loaded_after("import sklearn_ddpm") == []


@pytest.mark.parametrize("command", sorted(cli._COMMANDS))
def test_each_command_is_built_with_its_module(command, capsys):
    parser = cli.build_parser(for_argv=[command, "--help"])
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--help"])
    assert "examples:" in capsys.readouterr().out or command == "reproduce"


def test_listed_help_is_each_commands_own():
    full = cli.build_parser()
    subparsers = full._subparsers._group_actions[0]
    own = {action.dest: action.help for action in subparsers._choices_actions}
    assert own == {name: help_text for name, (_, help_text) in cli._COMMANDS.items()}


def test_public_names_load_on_first_use():
    namespace = {}
    exec("from sklearn_ddpm import *", namespace)  # every name of __all__ must resolve
    assert set(sklearn_ddpm.__all__) <= set(namespace)
    for name in sklearn_ddpm.__all__:
        assert getattr(sklearn_ddpm, name) is not None
    assert set(sklearn_ddpm.__all__) <= set(dir(sklearn_ddpm))
    assert sklearn_ddpm.metrics.miou_score is sklearn_ddpm.miou_score  # sub-packages too
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sklearn_ddpm.nope


def test_a_command_whose_module_is_missing_says_so(monkeypatch, capsys):
    monkeypatch.setitem(cli._COMMANDS, "ghost", ("sklearn_ddpm.no_such_module", "a command not installed"))
    assert cli.main(["ghost", "--anything"]) == 2
    assert "`sklearn-ddpm ghost` needs the module 'sklearn_ddpm.no_such_module'" in capsys.readouterr().err
