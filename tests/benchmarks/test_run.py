"""benchmarks/run.py: every benchmark script belongs to a question, and the runner runs one as its own."""

import pytest


def test_every_benchmark_script_is_grouped(load):
    run = load("run")
    grouped = {name for names in run.GROUPS.values() for name in names}
    assert set(run.scripts()) <= grouped, set(run.scripts()) - grouped


def test_a_group_and_a_name_resolve(load):
    run = load("run")
    assert run.resolve("memory") == [n for n in run.GROUPS["memory"] if (run.HERE / f"{n}.py").is_file()]
    assert run.resolve("weizmann") == ["weizmann"]
    with pytest.raises(SystemExit, match="unknown benchmark"):
        run.resolve("no_such_benchmark")


def test_the_runner_runs_a_script_with_its_arguments(load, capsys):
    run = load("run")
    with pytest.raises(SystemExit, match="unknown benchmark"):
        run.main(["report"])
    assert run.run("recompute_std", ["--help"]) == 0
    assert "usage" in capsys.readouterr().out
