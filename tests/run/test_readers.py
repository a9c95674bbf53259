"""Read-only commands change nothing in a run directory and fail in one line on bad input; the training
program is compiled before the first chunk is timed, the shorter last chunk's included."""

import json
import shutil
from pathlib import Path

import pytest

from plastix.cli import main
from plastix.run import loop as loop_mod
from plastix.run.config import from_dict
from plastix.run.load import evaluate
from plastix.run.train import train


def _config(tmp_path, name, total_steps=4096, **extra):
    return from_dict({"env": "MiniGrid-Empty-5x5-v0", "total_steps": total_steps, "seeds": 1,
                      "log_every": 1024, "eval_episodes": 2, "out_dir": str(tmp_path), "name": name,
                      "progress": False, "ppo": {"num_envs": 4, "num_steps": 64, "num_minibatches": 2},
                      **extra})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train(_config(tmp_path_factory.mktemp("runs"), "run")).run_dir


def _listing(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")}


def test_evaluate_skips_a_checkpoint_being_saved_and_deletes_nothing(run_dir, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(run_dir, run)
    (run / "checkpoints" / "4" / "plastix_manifest.json").unlink()  # as while it is being saved
    before = _listing(run)
    out = evaluate(run, episodes=2)
    assert out["step"] == 3072  # checkpoint 3's
    said = capsys.readouterr().err
    assert "checkpoint 4 is unusable" in said and "left as it is" in said and "trying checkpoint 3" in said
    assert _listing(run) == before  # checkpoint 4 is still there, nothing was written


@pytest.mark.parametrize("episodes", ["0", "-1"])
def test_evaluate_refuses_a_non_positive_episode_count(run_dir, episodes, capsys):
    assert main(["evaluate", str(run_dir), "--episodes", episodes]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: episodes: must be a positive number") and err.count("\n") == 1


def test_evaluate_names_an_unknown_key_of_the_run_config(run_dir, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(run_dir, run)
    path = run / "config.yaml"
    path.write_text(path.read_text() + "colour: blue\n")
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: colour: unknown field") and err.count("\n") == 1


def test_analyze_names_a_run_that_has_not_logged(run_dir, tmp_path, capsys):
    run = tmp_path / "fresh"
    run.mkdir()
    shutil.copy(run_dir / "config.yaml", run / "config.yaml")
    assert main(["analyze", str(run)]) == 2
    assert "has a config.yaml but no metrics.jsonl" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]


def test_render_and_sweep_flags_fail_in_one_line(tmp_path, capsys):
    out = tmp_path / "missing" / "ep.gif"
    assert main(["envs", "render", "MiniGrid-Empty-5x5-v0", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: out: the folder {str(out.parent)!r} does not exist")
    assert main(["sweep", "--grid", "ppo.lr=[1e-4", "--out", str(tmp_path / "s"), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ppo.lr: '[1e-4': not a value") and err.count("\n") == 1


def test_the_shorter_last_chunk_is_compiled_before_the_first_chunk_is_timed(tmp_path, monkeypatch):
    events = []
    chunk = loop_mod.DeviceLoop.chunk

    def recording(self, iterations, hook=None, like=None):
        fn = chunk(self, iterations, hook, like)
        events.append(("compiled", iterations))

        def run(*args):
            events.append(("ran", iterations))
            return fn(*args)

        return run

    monkeypatch.setattr(loop_mod.DeviceLoop, "chunk", recording)
    result = train(_config(tmp_path, "odd", total_steps=3 * 1024 + 256))  # chunks of 4, 4, 4, 1 iterations
    assert events[:2] == [("compiled", 4), ("compiled", 1)]
    assert [e for e in events[2:] if e[0] == "compiled"] == []  # nothing compiles while timed
    assert [e[1] for e in events if e[0] == "ran"] == [4, 4, 4, 1]
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 3328


def test_representations_of_a_task_routed_run_feed_it_its_task_ids(tmp_path, capsys):
    config = from_dict({"env": "TaskMix/MiniGrid-v0", "total_steps": 2048, "seeds": 1, "log_every": 2048,
                        "eval_episodes": 2, "out_dir": str(tmp_path), "name": "task", "progress": False,
                        "taskmix": {"tasks": ["MiniGrid-Empty-5x5-v0", "MiniGrid-Empty-6x6-v0"]},
                        "net": {"hidden": [16, 16], "moe": {"kind": "task", "experts": 2}},
                        "ppo": {"num_envs": 4, "num_steps": 64, "num_minibatches": 2}})
    run = train(config).run_dir
    assert main(["analyze", "representations", str(run), "--samples", "64", "--envs", "8", "--steps",
                 "128"]) == 0
    result = json.loads((run / "representations.json").read_text())
    assert result and "Traceback" not in capsys.readouterr().err
