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
  envs      list registered environments: plastix envs list [PREFIX]
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


def envs_command(argv: list[str]) -> int:
    from plastix.envs import list_envs

    if not argv or argv[0] != "list":
        print("usage: plastix envs list [PREFIX]", file=sys.stderr)
        return 2
    for env_id in list_envs(argv[1] if len(argv) > 1 else ""):
        print(env_id)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"train": train_command, "envs": envs_command}
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
