"""``plastix train | envs``: the command line, generated from the config dataclasses by tyro."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

USAGE = """usage: plastix <command> [options]

commands:
  train     train an agent: plastix train [--recipe NAME|FILE.yaml] [--resume RUN_DIR] [--env ID]
            [--agent ppo|dqn] [--total-steps N] [--seeds N] [--ppo.lr X | --dqn.n-step N] ...
            (plastix train --help lists every option; --agent selects the section that applies)
  evaluate  plastix evaluate RUN_DIR [--episodes N]: the newest checkpoint with the agent's evaluation
            policy (PPO samples, DQN acts eps_eval-greedy), per seed
  recipes   plastix recipes: the presets, with what each runs
  envs      plastix envs list [PREFIX]: registered environments;
            plastix envs render ENV_ID --out file.png|.gif [--steps N --view full|agent]: look at one
  sweep     plastix sweep [SWEEP.yaml] --base RECIPE --grid ppo.lr=1e-4,3e-4 --set seeds=3 [--backend ray]:
            hyper-parameter sweeps; launching again resumes (plastix sweep --help)
  analyze   plastix analyze RUN_OR_SWEEP_DIR: plots and a markdown summary;
            plastix analyze representations RUN_DIR: mutual information of the actor's and the
            critic's latents with action, return, next latent and layout (k-NN), linear probes;
            plastix analyze thc FILE: THC scores of hyper-parameter consistency
"""


def _print_result(result, console: Console) -> None:
    table = Table(title=f"final evaluation ({result.steps:,} steps per seed)")
    table.add_column("seed", justify="right")
    table.add_column("success rate", justify="right")
    table.add_column("return", justify="right")
    for i, (s, r) in enumerate(zip(result.eval_success, result.eval_return, strict=True)):
        table.add_row(str(i), f"{s:.3f}", f"{r:.3f}")
    console.print(table)
    console.print(f"run directory: {result.run_dir}")
    console.print(f"learning curve: {result.plot}")


RESUME_OPTIONS = ("--progress", "--no-progress")  # a resume may change these: they change no result


def _train_args_class():
    """The dataclass ``plastix train`` parses: ``--recipe``, ``--resume``, ``--check`` and every
    `RunConfig` field (built here, with real types, so tyro can read them)."""
    import dataclasses
    from typing import Annotated

    import tyro

    from plastix.run.config import RunConfig

    arg = lambda text: tyro.conf.arg(help=text)  # noqa: E731
    return dataclasses.make_dataclass("TrainArgs", [
        ("config", Annotated[RunConfig, tyro.conf.arg(name="")]),
        ("recipe", Annotated[str, arg("Start from a preset (plastix recipes lists them) or a run-config "
                                      "YAML file; flags override it.")], dataclasses.field(default="")),
        ("resume", Annotated[str, arg("Continue the run in this directory from its newest intact "
                                      "checkpoint. Takes no other option but --progress / --no-progress: "
                                      "the run keeps its config.yaml.")], dataclasses.field(default="")),
        ("check", Annotated[bool, arg("Validate the configuration and print its plan (iterations, chunks, "
                                      "env steps), then exit without compiling or training.")],
         dataclasses.field(default=False)),
    ], frozen=True)


def train_command(argv: list[str]) -> int:
    """``plastix train``: ``--recipe`` picks the defaults, then every config field is a flag (tyro)."""
    import tyro

    from plastix.run.checkpoint import ResumeError
    from plastix.run.config import ConfigError, RunConfig, load_recipe
    from plastix.run.lock import RunLockedError
    from plastix.run.train import NonFiniteLossError, resume, train

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe")
    pre.add_argument("--resume")
    known, rest = pre.parse_known_args(argv)
    console = Console()
    try:
        if known.resume and "-h" not in rest and "--help" not in rest:
            refused = [a.split("=")[0] for a in rest if a.startswith("-") and a not in RESUME_OPTIONS]
            if refused or known.recipe or [a for a in rest if not a.startswith("-")]:
                name = refused[0] if refused else "--recipe" if known.recipe else rest[0]
                raise ConfigError(f"resume: {name} would change the run, which keeps its config.yaml; "
                                  f"with --resume only {', '.join(RESUME_OPTIONS)} are accepted")
            progress = {"--progress": True, "--no-progress": False}.get(rest[-1]) if rest else None
            result = resume(known.resume, progress=progress, say=console.print)
        else:
            args_class = _train_args_class()
            default = load_recipe(known.recipe) if known.recipe else RunConfig()
            args = tyro.cli(args_class, default=args_class(config=default, recipe=known.recipe or ""),
                            args=rest, prog="plastix train", description="Train an agent.")
            if args.check:
                return _print_plan(args.config, console)
            result = train(args.config)
    except (ConfigError, ResumeError, FileExistsError, NonFiniteLossError, RunLockedError) as err:
        console.print(f"[bold red]error[/]: {err}", markup=True, highlight=False)
        return 2
    _print_result(result, console)
    return 0


def _print_plan(config, console: Console) -> int:
    """``plastix train --check``: validate, then say what the run would do."""
    from plastix.run.config import plan, validate
    from plastix.run.load import check_program

    validate(config)
    check_program(config)
    p = plan(config)
    console.print(f"ok: {config.agent} on {config.env}, {config.seeds} seed(s): {p.iterations:,} "
                  f"iterations of {p.batch:,} env steps = {p.total_steps:,} steps per seed, in "
                  f"{p.num_chunks} chunk(s) of up to {p.per_chunk:,} iterations", highlight=False)
    return 0


def recipes_command(argv: list[str]) -> int:
    """``plastix recipes``: every preset with its one-line description."""
    from plastix.run.config import list_recipes, recipe_description

    table = Table(title="recipes (plastix train --recipe NAME; any flag overrides them)")
    table.add_column("recipe", no_wrap=True)
    table.add_column("what it runs")
    for name in list_recipes():
        table.add_row(name, recipe_description(name))
    Console(width=max(100, Console().width)).print(table)
    return 0


def render_env(env_id: str, out: str, steps: int = 0, seed: int = 0, tile_size: int = 16,
               view: str = "full") -> str:
    """Save a frame (``.png``) or an episode of random actions (``.gif``) of a gridworld or a MinAtar game
    (MinAtar's colours; ``view`` is the gridworlds')."""
    import jax
    import numpy as np
    from PIL import Image

    from plastix.envs import check_env_id, make

    check_env_id(env_id)
    minatar = env_id.startswith("MinAtar/")
    if not minatar and not env_id.startswith(("MiniGrid-", "BabyAI-")):
        raise ValueError(f"env_id: render draws gridworlds (MiniGrid-*, BabyAI-*) and MinAtar games "
                         f"(MinAtar/*); {env_id} is not one")
    if view not in ("full", "agent"):
        raise ValueError(f"view: {view!r} is not one of full, agent")
    suffix = out.rsplit(".", 1)[-1].lower()
    if suffix not in ("png", "gif"):
        raise ValueError(f"out: {out!r} must end in .png or .gif")
    folder = Path(out).resolve().parent
    if not folder.is_dir():
        raise ValueError(f"out: the folder {str(folder)!r} does not exist")
    if minatar:
        from plastix.envs.minatar.render import rgb

        env, draw = make(env_id), lambda o: rgb(np.asarray(o), tile_size)
    else:
        env = make(env_id, observation="rgb_full" if view == "full" else "rgb", tile_size=tile_size)
        draw = np.asarray
    key = jax.random.PRNGKey(seed)
    obs, state = env.reset(key)
    frames = [draw(obs)]
    step = jax.jit(env.step)
    for t in range(steps if suffix == "gif" else 0):
        k_act, k_env = jax.random.split(jax.random.fold_in(key, t + 1))
        action = env.action_space.sample(k_act)
        obs, state, *_ = step(k_env, state, action)
        frames.append(draw(obs))
    images = [Image.fromarray(f) for f in frames]
    if suffix == "png":
        images[0].save(out)
    else:
        images[0].save(out, save_all=True, append_images=images[1:], duration=150, loop=0)
    return out


def envs_command(argv: list[str]) -> int:
    from plastix.envs import list_envs

    if argv and argv[0] == "list":
        for env_id in list_envs(argv[1] if len(argv) > 1 else ""):
            print(env_id)
        return 0
    if argv and argv[0] == "render":
        parser = argparse.ArgumentParser(prog="plastix envs render",
                                         description="Save a gridworld or MinAtar frame or a random "
                                                     "episode.")
        parser.add_argument("env_id")
        parser.add_argument("--out", required=True, help="file.png (first frame) or file.gif")
        parser.add_argument("--steps", type=int, default=50, help="random-action steps in a gif")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--tile-size", type=int, default=16)
        parser.add_argument("--view", default="full",
                            help="gridworlds: full (top-down) or agent (egocentric)")
        args = parser.parse_args(argv[1:])
        try:
            path = render_env(args.env_id, args.out, args.steps, args.seed, args.tile_size, args.view)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(path)
        return 0
    print("usage: plastix envs list [PREFIX] | plastix envs render ENV_ID --out FILE.png|.gif",
          file=sys.stderr)
    return 2


def _scalar(text: str):
    """A flag value: int, float (``1e-4`` too, which YAML 1.1 reads as a string), else YAML."""
    import yaml

    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{text!r}: not a value ({getattr(err, 'problem', None) or err})") from None


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets: ``1,[32, 32]`` -> ``["1", "[32, 32]"]``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def _assignments(items: list[str], many: bool) -> dict:
    """``field=value`` (or ``field=v1,v2`` when ``many``) pairs."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{item!r}: expected FIELD=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key] = [_scalar(v.strip()) for v in _split_top(value)] if many else _scalar(value)
        except ValueError as err:
            raise ValueError(f"{key}: {err}") from None
    return out


def sweep_command(argv: list[str]) -> int:
    """``plastix sweep [SWEEP.yaml] [--base RECIPE] [--grid FIELD=V1,V2 ...] [--set FIELD=V ...]``."""
    import dataclasses

    from plastix.run.config import ConfigError
    from plastix.run.load import check_program, program_key
    from plastix.run.sweep import (
        SweepConfig,
        build_config,
        check_sweep,
        identity,
        launch,
        load_sweep,
        points,
        run_hash,
    )

    parser = argparse.ArgumentParser(prog="plastix sweep", description="Grid or random hyper-parameter "
                                     "sweeps, locally or on Ray; re-launching resumes a sweep.")
    parser.add_argument("file", nargs="?", help="a sweep YAML (fields of SweepConfig); flags override it")
    parser.add_argument("--base", help="recipe name or run-config YAML to start from")
    parser.add_argument("--grid", nargs="*", default=[], help="FIELD=V1,V2 to sweep (e.g. ppo.lr=1e-4,3e-4)")
    parser.add_argument("--set", nargs="*", default=[], help="FIELD=VALUE fixed for every run")
    parser.add_argument("--mode", choices=("grid", "random"))
    parser.add_argument("--num-samples", type=int)
    parser.add_argument("--out", help="sweep directory")
    parser.add_argument("--backend", choices=("local", "ray"))
    parser.add_argument("--workers", type=int)
    parser.add_argument("--address", help="Ray cluster address")
    parser.add_argument("--cpus-per-run", type=float)
    parser.add_argument("--gpus-per-run", type=float)
    parser.add_argument("--retries", type=int, help="times a failed run is tried again (default 1)")
    parser.add_argument("--restart-changed", action="store_true", default=None,
                        help="points whose runs in --out were trained from another config (a changed base "
                             "or --set) train afresh instead of the relaunch being refused")
    parser.add_argument("--check", action="store_true",
                        help="validate every point's config and list the runs, then exit without training")
    args = parser.parse_args(argv)
    try:
        sweep = load_sweep(args.file) if args.file else SweepConfig()
        changes = {k: v for k, v in {"base": args.base, "mode": args.mode, "num_samples": args.num_samples,
                                     "out": args.out, "backend": args.backend, "workers": args.workers,
                                     "address": args.address, "cpus_per_run": args.cpus_per_run,
                                     "gpus_per_run": args.gpus_per_run, "retries": args.retries,
                                     "restart_changed": args.restart_changed}.items()
                   if v is not None}
        if args.grid:
            changes["grid"] = {**sweep.grid, **_assignments(args.grid, True)}
        if args.set:
            changes["set"] = {**sweep.set, **_assignments(args.set, False)}
        sweep = dataclasses.replace(sweep, **changes)
        if args.check:
            check_sweep(sweep)
            traced = set()  # each distinct program once: a host env's games of one spec trace alike
            for overrides in points(sweep):
                config = build_config(sweep, overrides)
                if (key := program_key(config)) not in traced:
                    check_program(config)
                    traced.add(key)
                print(f"{run_hash(identity(config))}  {json.dumps(overrides)}")
            print(f"ok: {len(points(sweep))} run(s) from base {sweep.base!r} into {sweep.out}")
            return 0
        rows = launch(sweep)
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = Table(title=f"sweep {sweep.out}")
    for col in ("run", "overrides", "status", "attempts"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["hash"], json.dumps(r["overrides"]), r["status"], str(r["attempts"]))
    Console(width=160).print(table)
    return 0 if all(r["status"] == "done" for r in rows) else 1


def thc_command(argv: list[str]) -> int:
    """``plastix analyze thc FILE``: THC across games per hyper-parameter, regime and agent."""
    parser = argparse.ArgumentParser(prog="plastix analyze thc",
                                     description="THC score of hyper-parameter consistency across games.")
    parser.add_argument("file",
                        help="final scores: data[regime][hyperparameter][agent][value] = [seeds][games]")
    args = parser.parse_args(argv)
    from plastix.analysis.thc import thc_table

    try:
        rows = thc_table(args.file)
    except (OSError, KeyError, ValueError) as err:
        print(f"error: {args.file}: {err}", file=sys.stderr)
        return 2
    columns = sorted({(r["regime"], r["agent"]) for r in rows})
    table = Table(title="THC across games (mean +- std over values; 0 = consistent, 1 = not)")
    table.add_column("hyper-parameter")
    for regime, agent in columns:
        table.add_column(f"{regime} {agent}", justify="right")
    by_key = {(r["hyperparameter"], r["regime"], r["agent"]): r for r in rows}
    for hp in sorted({r["hyperparameter"] for r in rows}):
        cells = []
        for regime, agent in columns:
            r = by_key.get((hp, regime, agent))
            cells.append(f"{r['thc']:.3f} +- {r['std']:.3f}" if r and r["thc"] is not None else "-")
        table.add_row(hp, *cells)
    console = Console(width=200)
    console.print(table)
    for r in rows:
        if r["thc"] is None:
            console.print(f"skipped {r['regime']} {r['hyperparameter']} {r['agent']}: {r['note']}",
                          markup=False)
    return 0


def analyze_command(argv: list[str]) -> int:
    """``plastix analyze RUN_OR_SWEEP_DIR`` | ``plastix analyze RUN_DIR RUN_DIR ...`` (compared) |
    ``plastix analyze representations RUN_DIR`` | ``plastix analyze thc FILE``."""
    if argv and argv[0] == "thc":
        return thc_command(argv[1:])
    if argv and argv[0] not in ("representations", "-h", "--help"):
        from plastix.analysis.report import analyze, compare

        many = len(argv) > 1
        try:
            path = compare(argv) if many else analyze(argv[0])
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(path.read_text())
        print(f"figure in {path.parent}" if many else f"figures and summary in {path.parent}")
        return 0
    if not argv or argv[0] != "representations":
        print("usage: plastix analyze RUN_OR_SWEEP_DIR\n"
              "       plastix analyze RUN_DIR RUN_DIR [...]   (runs side by side)\n"
              "       plastix analyze representations RUN_DIR [RUN_DIR ...] [--samples N]\n"
              "       plastix analyze thc FILE", file=sys.stdout if argv else sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    parser = argparse.ArgumentParser(prog="plastix analyze representations",
                                     description="Mutual information of the actor's and the critic's "
                                                 "latents with action, return, dynamics and layout, every "
                                                 "seed, with bootstrap intervals; several runs side by side.")
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--samples", type=int, default=4096, help="samples per estimate (per seed)")
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--out", help="directory of the figure and table (default: <runs' parent>/compare)")
    args = parser.parse_args(argv[1:])
    from plastix.analysis.representation import compare
    from plastix.run.checkpoint import ResumeError

    try:
        path = compare(args.run_dirs, args.out, num_envs=args.envs, num_steps=args.steps,
                       samples=args.samples, k=args.k)
    except (ResumeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path.read_text())  # markdown: every column named in full, no truncation
    print(f"figure and table in {path.parent}; per-run results in each run's representations.json")
    return 0


def evaluate_command(argv: list[str]) -> int:
    """``plastix evaluate RUN_DIR [--episodes N]``."""
    parser = argparse.ArgumentParser(prog="plastix evaluate",
                                     description="Evaluate a run's newest checkpoint, per seed.")
    parser.add_argument("run_dir")
    parser.add_argument("--episodes", type=int, help="episodes per seed (default: the run's eval_episodes)")
    args = parser.parse_args(argv)
    from plastix.run.checkpoint import ResumeError
    from plastix.run.config import ConfigError
    from plastix.run.load import evaluate

    try:
        out = evaluate(args.run_dir, args.episodes)
    except (ResumeError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = Table(title=f"evaluation of {args.run_dir} at step {out['step']:,} ({out['episodes']} episodes)")
    for col in ("seed", "success rate", "return"):
        table.add_column(col, justify="right")
    for i, (s, r) in enumerate(zip(out["eval_success"], out["eval_return"], strict=True)):
        table.add_row(str(i), f"{s:.3f}", f"{r:.3f}")
    Console().print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"train": train_command, "envs": envs_command, "analyze": analyze_command,
                "sweep": sweep_command, "evaluate": evaluate_command, "recipes": recipes_command}
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
