"""Every command that writes checks its output before any work, with an error naming the argument."""

import pytest

from sklearn_ddpm.cli import main


def _no_work(*args, **kwargs):
    raise AssertionError("the command started its work before checking where it writes")


# (argv with OUT in place of the output, the module attribute that starts the work)
_COMMANDS = {
    "fit": (["fit", "IMAGES", "MASKS", "-o", "OUT"], "sklearn_ddpm._segment_cli._commands._load_backbone"),
    "predict": (["predict", "seg.joblib", "IMAGES", "-o", "OUT"], "sklearn_ddpm._segment_cli._commands.load_segmenter"),
    "train-ddpm": (["train-ddpm", "IMAGES", "OUT"], "sklearn_ddpm.ddpm_training._train.train_ddpm"),
    "convert": (["convert", "model.pt", "OUT"], "sklearn_ddpm.backbone._guided_diffusion.load_guided_diffusion"),
    "reproduce": (["reproduce", "--datasets-root", "D", "--checkpoints", "C", "--output", "OUT"],
                  "sklearn_ddpm.studies._reproduce.reproduce"),
    "synthesize": (["synthesize", "OUT", "--n-samples", "2"], "sklearn_ddpm.backbone.load_backbone"),
    "synthesize --train-network": (["synthesize", "S", "--n-samples", "2", "--label-with", "seg.joblib",
                                    "--train-network", "OUT"], "sklearn_ddpm.backbone.load_backbone"),
}
_FILE_OUTPUTS = {"fit": "-o/--output", "reproduce": "--output", "synthesize --train-network": "--train-network"}
_ARGUMENT = {"fit": "-o/--output", "predict": "-o/--output", "train-ddpm": "OUT_DIR", "convert": "OUT_DIR",
             "reproduce": "--output", "synthesize": "OUT_DIR", "synthesize --train-network": "--train-network"}


def _run(command, out, tmp_path, monkeypatch, capsys):
    argv, work = _COMMANDS[command]
    module, _, name = work.rpartition(".")
    monkeypatch.setattr(f"{module}.{name}", _no_work)
    monkeypatch.chdir(tmp_path)
    code = main([str(out) if a == "OUT" else a for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_output_under_a_file_fails_before_any_work(command, tmp_path, monkeypatch, capsys):
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "out" / ("seg.joblib" if command in _FILE_OUTPUTS else "")
    code, err = _run(command, out, tmp_path, monkeypatch, capsys)
    assert code == 2, err
    assert _ARGUMENT[command] in err and "a_file" in err and "is a file, not a folder" in err, err


@pytest.mark.parametrize("command", sorted(_FILE_OUTPUTS))
def test_output_file_that_is_a_folder_fails_before_any_work(command, tmp_path, monkeypatch, capsys):
    out = tmp_path / "models"
    out.mkdir()
    code, err = _run(command, out, tmp_path, monkeypatch, capsys)
    assert code == 2 and f"{_FILE_OUTPUTS[command]} {str(out)!r} is a folder" in err, err


def test_unwritable_folder_is_found_by_trying(tmp_path, monkeypatch):
    import tempfile

    from sklearn_ddpm.utils._atomic import check_output_file, ensure_directory

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(PermissionError, match=r"-o/--output folder '.*' is not writable: Read-only file system"):
        check_output_file(tmp_path / "seg.joblib", "-o/--output")
    with pytest.raises(PermissionError, match="OUT_DIR '.*' is not writable"):
        ensure_directory(tmp_path / "run", "OUT_DIR")


def test_a_failed_replace_names_the_target_not_the_temporary_file(tmp_path):
    from sklearn_ddpm.utils._atomic import atomic_write

    (tmp_path / "seg.joblib").mkdir()
    with pytest.raises(OSError, match=r"cannot write '.*seg\.joblib'") as info:
        with atomic_write(tmp_path / "seg.joblib") as f:
            f.write(b"x")
    assert ".tmp" not in str(info.value)
