"""``plastix train | envs``: the command line, generated from the config dataclasses by tyro."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

USAGE = """usage: plastix <command> [options]

commands:
  train     train an agent: plastix train [--recipe NAME] [--resume RUN_DIR] [--env ID] [--agent NAME]
            [--total-steps N] [--seeds N] [--ppo.lr X] ...  (plastix train --help lists every field)
  envs      plastix envs list [PREFIX]: registered environments;
            plastix envs render ENV_ID --out file.png|.gif [--steps N --view full|agent]: look at one
  analyze   plastix analyze representations RUN_DIR: mutual information of the actor's and the
            critic's latents with action, return, next latent and layout (k-NN), linear probes
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


def train_command(argv: list[str]) -> int:
    """Parse ``--recipe`` / ``--resume`` first, then every config field with tyro."""
    import tyro

    from plastix.run.checkpoint import ResumeError
    from plastix.run.config import ConfigError, RunConfig, load_recipe
    from plastix.run.train import NonFiniteLossError, resume, train

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe")
    pre.add_argument("--resume")
    known, rest = pre.parse_known_args(argv)
    console = Console()
    try:
        if known.resume:
            if rest or known.recipe:
                raise ConfigError(
                    "resume: --resume RUN_DIR takes no other options (the run keeps its config.yaml)"
                )
            result = resume(known.resume)
        else:
            default = load_recipe(known.recipe) if known.recipe else RunConfig()
            config = tyro.cli(
                RunConfig, default=default, args=rest, prog="plastix train",
                description="Train an agent. Also: --recipe NAME (a preset from plastix/recipes), "
                            "--resume RUN_DIR (continue a killed run).",
            )
            result = train(config)
    except (ConfigError, ResumeError, FileExistsError, NonFiniteLossError) as err:
        console.print(f"[bold red]error[/]: {err}")
        return 2
    _print_result(result, console)
    return 0


def render_env(env_id: str, out: str, steps: int = 0, seed: int = 0, tile_size: int = 16,
               view: str = "full") -> str:
    """Save a frame (``.png``) or an episode of random actions (``.gif``) of a gridworld."""
    import jax
    import numpy as np
    from PIL import Image

    from plastix.envs import make

    if view not in ("full", "agent"):
        raise ValueError(f"view: {view!r} is not one of full, agent")
    suffix = out.rsplit(".", 1)[-1].lower()
    if suffix not in ("png", "gif"):
        raise ValueError(f"out: {out!r} must end in .png or .gif")
    env = make(env_id, observation="rgb_full" if view == "full" else "rgb", tile_size=tile_size)
    key = jax.random.PRNGKey(seed)
    obs, state = env.reset(key)
    frames = [np.asarray(obs)]
    step = jax.jit(env.step)
    for t in range(steps if suffix == "gif" else 0):
        k_act, k_env = jax.random.split(jax.random.fold_in(key, t + 1))
        action = env.action_space.sample(k_act)
        obs, state, *_ = step(k_env, state, action)
        frames.append(np.asarray(obs))
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
                                         description="Save a gridworld frame or a random episode.")
        parser.add_argument("env_id")
        parser.add_argument("--out", required=True, help="file.png (first frame) or file.gif")
        parser.add_argument("--steps", type=int, default=50, help="random-action steps in a gif")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--tile-size", type=int, default=16)
        parser.add_argument("--view", default="full", help="full (top-down) or agent (egocentric)")
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


def analyze_command(argv: list[str]) -> int:
    """``plastix analyze representations RUN_DIR``: what the actor's and critic's latents hold."""
    if not argv or argv[0] != "representations":
        print("usage: plastix analyze representations RUN_DIR [--samples N] [--seed-index I]",
              file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="plastix analyze representations",
                                     description="Mutual information of the actor's and the critic's "
                                                 "latents with action, return, next latent and layout.")
    parser.add_argument("run_dir")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed-index", type=int, default=0, help="which of the run's seeds")
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args(argv[1:])
    from plastix.plasticity.representation import analyze
    from plastix.run.checkpoint import ResumeError

    try:
        results = analyze(args.run_dir, args.seed_index, args.envs, args.steps, args.samples, args.k)
    except (ResumeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = Table(title=f"representations of {args.run_dir}")
    keys = sorted({k for r in results.values() for k in r})
    table.add_column("latent")
    for key in keys:
        table.add_column(key, justify="right")
    for name, r in results.items():
        table.add_row(name, *(f"{r[k]:.3f}" if k in r else "-" for k in keys))
    Console().print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"train": train_command, "envs": envs_command, "analyze": analyze_command}
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
