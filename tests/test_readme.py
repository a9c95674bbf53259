"""The README's command lines are what the CLI accepts: each `plastix train` / `plastix sweep` example is
validated with --check (no training), commands that need no data run and show what the README says they
do, the cheap training example runs as shown, and the ones that read a run directory or a file the
README only names show their --help. The benchmark tables quote bench/results/*.json."""

import json
import re
import shlex
from pathlib import Path

import pytest

from plastix.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SWEEP_TRACES = 2  # points of each README sweep whose program is traced (all are validated)
# the README's one training example cheap enough to run in the default suite (~30 s on 2 cores)
CHEAP_TRAIN = ("plastix train --agent dqn --env MiniGrid-Empty-8x8-v0 --total-steps 65536 --seeds 2 "
               "--dqn.num-envs 16 --dqn.min-replay 2000 --dqn.buffer-size 50000 --dqn.double --dqn.n-step 3 "
               "--log-every 16384 --eval-every 16384")


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
    if command == "sweep":  # --check traces every point, seconds each (atari_scaling has 468): here the
        import plastix.run.load  # first SWEEP_TRACES are traced; build_config still validates every point

        trace, traced = plastix.run.load.check_program, []

        def first_points(config):
            if len(traced) < SWEEP_TRACES:
                traced.append(config)
                trace(config)

        monkeypatch.setattr(plastix.run.load, "check_program", first_points)
    if command in ("train", "sweep") and not names_missing:
        assert main(words + ["--check"]) == 0, capsys.readouterr()
        out = capsys.readouterr().out
        assert "ok:" in out
        if words[:2] == ["sweep", "moe_taskmix"]:  # the README's table: 28 settings, all in the sweep
            assert "ok: 28 run(s)" in out, out
    elif command in ("recipes", "envs") and not names_missing:
        assert main(words) == 0
        _check_output(words, capsys.readouterr().out, tmp_path)
    else:
        sub = words[1:2] if words[1:2] in (["representations"], ["thc"]) else []
        try:
            code = main([command, *sub, "--help"])
        except SystemExit as exit_:
            code = exit_.code
        assert code == 0


def _check_output(words: list[str], out: str, cwd: Path) -> None:
    """What the README says these commands show: every recipe it names, the env ids it counts, a frame."""
    if words == ["recipes"]:
        named = set(re.findall(r"--recipe ([a-z0-9_]+)(?=\s|$)", README.read_text(), re.M))
        listed = set(re.findall(r"^\S ([a-z0-9_]+) +\S", out, re.M))
        assert named and named <= listed, named - listed
    elif words[:1] == ["list"] or words[:2] == ["envs", "list"]:
        prefix = words[-1]
        ids = out.split()
        assert ids and all(i.startswith(prefix) for i in ids), out
        if prefix == "MiniGrid-":  # "All 76 of MiniGrid's non-WFC ids"
            assert len(ids) == 76 and not any("WFC" in i for i in ids)
    elif words[:2] == ["envs", "render"]:
        frame = cwd / words[words.index("--out") + 1]
        assert frame.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_cheap_training_example_runs(capsys, tmp_path, monkeypatch):
    """The README's ~30 s DQN line, run exactly as shown: a run directory with an evaluation per seed at
    every 16k steps and a final one."""
    (line,) = [e for e in _examples() if " ".join(e.split()) == CHEAP_TRAIN]  # the README's own line
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(line)[1:]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps the table at the terminal's width
    assert "final evaluation (65,536 steps per seed)" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["agent"] == "dqn" and summary["seeds"] == 2 and summary["steps_per_seed"] == 65_536
    assert len(summary["eval_return"]) == len(summary["eval_success"]) == 2
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r["step"] for r in rows if "eval_return" in r]
    assert evaluated == [16_384, 32_768, 49_152, 65_536]  # --log-every / --eval-every 16384
    assert all(len(r["eval_return"]) == len(r["episode_return"]) == 2 for r in rows if "eval_return" in r)
    assert (run_dir / "plots" / "learning_curve.png").is_file()


def _bench(name: str) -> dict:
    return json.loads((ROOT / "bench" / "results" / f"{name}.json").read_text())


def _rows(rows: dict, ratio, table: tuple) -> list[str]:
    """README rows ``| label | steps | steps/s | ratio(steps/s)`` from (json key, label, format) triples."""
    return [f"| {label} | {rows[k]['steps']:,} | "
            + fmt.format(rows[k]["steps_per_s"], ratio(rows[k]["steps_per_s"])) for k, label, fmt in table]


def _bench_figures() -> list[str]:
    """The README's benchmark figures, formatted from the committed result files."""
    ppo = _bench("ppo_throughput")
    r, split = ppo["rows"], ppo["iteration_split_ms"]
    labels = {"plastix": "plastix", "navix": "NAVIX 0.7.4",
              "plastix+probe": "plastix, dormant + GraMa measured every update (fused, the default)",
              "plastix+probe apart": "plastix, the same measured in a second pass (`--plasticity.no-fused`)",
              "navix default view": "NAVIX on its default 5x5 fully observed view (another task)"}
    figures = [f"| {label} | {r[k]['compile_s']:.1f} | {r[k]['steps_per_s'] / 1e3:.1f}k | "
               f"{r[k]['final_return']:.3f} |" for k, label in labels.items()]
    whole = ppo["end_to_end"]
    figures += [f"took **{whole['plastix_train_s']:.1f} s** against **{whole['navix_s']:.1f} s**",
                f"({whole['navix_s'] / whole['plastix_train_s']:.2f}x; goal: faster)",
                f"was {whole['plastix_train_steady_steps_per_s'] / 1e3:.1f}k steps/s"]
    figures += [f"| ratio | {r['plastix']['compile_s'] / r['navix']['compile_s']:.2f} | "
                f"**{ppo['speedup']:.2f}x** (goal 2x) | |",
                f"{ppo['probe_every_update_overhead']:+.1%} fused into the update",
                f"{ppo['probe_apart_every_update_overhead']:+.1%} as a second pass"]
    figures += [f"{n} {s['iteration_ms']:.1f} ms = env {s['env_ms']:.1f} ms + {s['agent_ms']:.1f} ms"
                for n, s in (("plastix", split["plastix"]), ("NAVIX", split["navix"]))]
    for g in _bench("grid_throughput")["rows"]:
        reused = f" ({g['pool_reused_starts']:.0%})" if g["batch"] > 1 else ""
        figures.append(
            f"| {g['env']} | {g['batch']} | {g['plastix_steps_per_s']:,.0f} | "
            f"{g['pool_steps_per_s']:,.0f}{reused} | {g['navix_steps_per_s']:,.0f} | "
            f"{g['speedup_vs_navix']:.2f} | {g['pool_speedup_vs_navix']:.2f} | "
            f"{g['plastix_compile_s']:.1f} / {g['navix_compile_s']:.1f} | {g['minigrid_steps_per_s']:,.0f} |")
    dqn = _bench("dqn_throughput")["rows"]
    sps = dqn["plastix DQN"]["steps_per_s"]
    figures += _rows(dqn, lambda x: sps / x, tuple((k, k, "{:,.0f} | {:.2f}x |") for k in dqn))
    figures += [f"| {n['variant']} | x{n['scale']} | {n['params']:,} | {n['gflops']:.1f} | {n['ms']:.0f} | "
                f"{n['time_vs_flatten']:.2f} |" for n in _bench("nets_cost")["rows"]]
    off = _bench("offpolicy_throughput")
    sps = off["rows"]["plastix SAC"]["steps_per_s"]
    figures += _rows(off["rows"], lambda x: sps / x, (
        ("Hopper-v5 env (random actions)", "Hopper-v5 env, random actions", "{:,.0f} | {:.3f} |"),
        ("plastix SAC", "plastix SAC", "{:.1f} | {:.2f} |"),
        ("plastix SAC + probe every 10 updates",
         "plastix SAC, dormant + GraMa on actor and critics every 10 updates", "{:.1f} | {:.2f} |"),
        ("sbx SAC", "sbx SAC", "{:.1f} | {:.2f}x |")))
    figures += [f"cost {off['ratios']['probe_overhead']:.1%}",
                f"took {off['replay']['device_us_per_step']:.0f} us with plastix's device replay",
                f"and {off['replay']['cpprb_us_per_step']:.0f} us with cpprb"]
    atari = _bench("atari_throughput")["rows"]
    sps = atari["(b) plastix DQN"]["steps_per_s"]
    figures += _rows(atari, lambda x: sps / x, (
        ("(a) AtariVectorEnv (random actions)", "(a) AtariVectorEnv, random actions", "{:,.0f} | {:.3f} |"),
        ("(b) plastix DQN", "(b) plastix DQN", "{:.1f} | {:.2f} |"),
        ("(c) Dopamine JAX DQN", "(c) Dopamine JAX DQN", "{:.1f} | **{:.2f}x**"),
        ("(d) plastix CALE SAC", "(d) plastix CALE SAC", "{:.1f} | {:.2f} |"),
        ("(e) plastix DER", "(e) plastix DER", "{:.1f} | {:.2f} |")))
    parts = ("cycle", "learn call, update", "learn call, no update", "act", "replay sample",
             "dqn bare plastix")
    for agent, pytorch in (("(b) plastix DQN", "dqn bare pytorch"), ("(e) plastix DER", None)):
        profile = atari[agent]["profile_ms"]
        figures.append("| " + " | ".join(f"{profile[k]:.1f}" for k in parts) + " | "
                       + (f"{profile[pytorch]:.1f}" if pytorch else "n/a") + " |")
    figures.append(f"100,000 / {atari['(e) plastix DER']['steps_per_s']:.1f} s")
    figures.append(f"at {sps:.1f} agent steps/s")
    conv = _bench("conv_agents")
    figures += [f"| {k} | {v:.1f} |" for k, v in conv["ms"].items()]
    figures += [f"| {k} | {v:.2f}x |" for k, v in conv["ratios"].items()]
    mw = _bench("metaworld_throughput")["rows"]
    raw = mw["MT10 gymnasium vector env, sync"]["steps_per_s"]
    figures += _rows(mw, lambda x: x / raw, (
        ("MT10 gymnasium vector env, sync", "(a) gymnasium vector env, sync", "{:,.0f} | {:.0%} |"),
        ("MT10 gymnasium vector env, async", "(a) gymnasium vector env, async", "{:,.0f} | {:.0%} |"),
        ("MT10 plastix host env, sync", "(b) plastix host env, sync", "{:,.0f} | {:.0%} |"),
        ("MT10 plastix host env, async", "(b) plastix host env, async", "{:,.0f} | {:.0%} |"),
        ("MT-SAC (400 x 3, batch 1280), sync", "(c) MT-SAC, sync", "{:.1f} | **{:.1%}**")))
    probe = _bench("probe_overhead")["rows"]
    for row, label, f in ((probe[0], "MLP 256-256 (SAC critic), batch 256", ".2f"),
                          (probe[1], "Impala x1 -> 512 (DQN), batch 32", ".0f")):
        figures += [f"| {label} | {row['plain_ms']:{f}} | {row['fused_ms']:{f}} | {row['separate_ms']:{f}} | "
                    f"{row['fused_overhead']:+.1%}", f"| {row['separate_overhead']:+.0%} |"]
    figures += [minatar_row(r) for r in _bench("minatar_throughput")["rows"]]
    return figures


def minatar_row(r: dict) -> str:
    """One row of the README's MinAtar throughput table from bench/results/minatar_throughput.json."""
    return (f"| {r['game']} | {r['batch']} | {r['plastix_steps_per_s']:,.0f} | "
            f"{r['gymnax_steps_per_s']:,.0f} | {r['pgx_steps_per_s']:,.0f} | {r['speedup_vs_best']:.2f}x | "
            f"{r['plastix_compile_s']:.1f} / "
            f"{r['gymnax_compile_s']:.1f} / {r['pgx_compile_s']:.1f} | {r['harness_steps_per_s']:,.0f} | "
            f"{r['reference_steps_per_s']:,.0f} |")


def test_readme_benchmark_figures_are_the_committed_results():
    text = " ".join(README.read_text().split())  # figures may wrap across lines
    missing = [f for f in _bench_figures() if " ".join(f.split()) not in text]
    assert not missing, missing


def test_readme_minatar_ppo_table_is_the_committed_sweep_analysis():
    """The MinAtar PPO rows are the committed `results/minatar_ppo/analysis/summary.md` (seeds, mean and
    interval), written by the `plastix analyze` the README shows."""
    summary = (ROOT / "results" / "minatar_ppo" / "analysis" / "summary.md").read_text().splitlines()
    readme = (ROOT / "README.md").read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in summary if "env=MinAtar/" in line]
    assert len(rows) == 4
    for cells in rows:
        game = cells[1].split("/")[1].split("-")[0]
        assert f"| {game} | {cells[2]} | {cells[4]} |" in readme, game


def test_readme_minatar_dqn_table_is_the_committed_sweep_analysis():
    """The MinAtar DQN rows are the committed `results/minatar_dqn/analysis/summary.md` (seeds, final
    evaluation mean and interval) and the training return of each run's last logged chunk (its committed
    metrics.jsonl, mean over seeds), for every run the analysis counts as finished."""
    sweep = ROOT / "results" / "minatar_dqn"
    summary = (sweep / "analysis" / "summary.md").read_text().splitlines()
    readme = (ROOT / "README.md").read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in summary if "env=MinAtar/" in line]
    assert len(rows) == 5  # all five games finished
    for cells in rows:
        game = cells[1].split("/")[1].split("-")[0]
        metrics = (sweep / "runs" / cells[0] / "metrics.jsonl").read_text().splitlines()
        last = json.loads(metrics[-1])
        assert last["step"] == 1_000_000
        train = sum(last["episode_return"]) / len(last["episode_return"])
        assert f"| {game} | {cells[2]} | {cells[4]} | {train:.1f} |" in readme, game
