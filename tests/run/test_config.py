"""Bad input fails before compilation, with one message naming the field and the accepted values."""

import dataclasses
import subprocess
import sys
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import pytest

import plastix.envs as E
from plastix.agents import PPOConfig
from plastix.envs.api import Box, Env
from plastix.nets.build import EncoderConfig, MoEConfig, NetConfig
from plastix.plasticity.hook import PlasticityConfig
from plastix.run.checkpoint import ResumeError
from plastix.run.config import ConfigError, RunConfig, from_dict, load_recipe, validate
from plastix.run.train import resume


@dataclass(frozen=True, eq=False)
class PointMass(Env):
    """A 1-D continuous-action env: enough to be refused by a discrete-only agent."""

    env_id: str

    @property
    def observation_space(self):
        return Box(-1.0, 1.0, (1,))

    @property
    def action_space(self):
        return Box(-1.0, 1.0, (1,))

    @property
    def max_steps(self):
        return 10

    def reset_env(self, key, params=None):
        return jnp.zeros(1)

    def step_env(self, key, state, action, params=None):
        nxt = jnp.clip(state + action, -1, 1)
        return nxt, -jnp.abs(nxt[0]), jnp.array(False), jnp.array(False), {"success": False}

    def observe(self, state, params=None):
        return state


E.register("Test-PointMass-v0", PointMass)


@pytest.mark.parametrize(
    "change, field, accepted",
    [
        (dict(env="MiniGrid-DoorKey-5x5"), "env", "MiniGrid-DoorKey-5x5-v0"),
        (dict(agent="ppo2"), "agent", "ppo"),
        (dict(total_steps=0), "total_steps", "positive"),
        (dict(seeds=-1), "seeds", "positive"),
        (dict(total_steps="many"), "total_steps", "int"),
        (dict(seeds=2.5), "seeds", "int"),
        (dict(observation="pixels"), "observation", "egocentric"),
        (dict(env="Test-PointMass-v0", agent="dqn", total_steps=50_000), "agent", "discrete"),
        (dict(ppo=PPOConfig(num_minibatches=7)), "ppo.num_minibatches", "divide"),
        (dict(ppo=PPOConfig(lr=-1.0)), "ppo.lr", "positive"),
        (dict(net=NetConfig(activation="swish")), "net.activation", "tanh"),
        (dict(net=NetConfig(bottleneck="pool")), "net.bottleneck", "perconv"),
        (dict(net=NetConfig(moe=MoEConfig(kind="hard"))), "net.moe.kind", "expert_choice"),
        (dict(net=NetConfig(moe=MoEConfig(kind="topk", k=5))), "net.moe.k", "experts"),
        (dict(net=NetConfig(moe=MoEConfig(kind="soft", position="final"), shared="all")),
         "net.moe.position", "middle"),
        (dict(net=NetConfig(moe=MoEConfig(kind="task"))), "net.moe.kind", "soft"),
        (dict(net=NetConfig(encoder=EncoderConfig(kind="resnet"))), "net.encoder.kind", "impala"),
        (dict(net=NetConfig(encoder=EncoderConfig(scale=0))), "net.encoder.scale", "positive"),
        (dict(ppo=PPOConfig(gamma=1.5)), "ppo.gamma", "[0, 1]"),
        (dict(net=NetConfig(hidden=(64, "a"))), "net.hidden", "tuple"),
        (dict(net=NetConfig(hidden=())), "net.hidden", "positive"),
        (dict(plasticity=PlasticityConfig(metrics="dormant,grammar")), "plasticity.metrics", "grama"),
        (dict(plasticity=PlasticityConfig(reset="redo2")), "plasticity.reset", "regrama"),
        (dict(plasticity=PlasticityConfig(every=0)), "plasticity.every", "positive"),
        (dict(plasticity=PlasticityConfig(grama_mode="input")), "plasticity.grama_mode", "weight"),
    ],
)
def test_validation_names_field_and_accepted_values(change, field, accepted):
    config = dataclasses.replace(RunConfig(), **change)
    with pytest.raises(ConfigError) as err:
        validate(config)
    msg = str(err.value)
    assert msg.startswith(field + ":") and accepted in msg, msg


def test_validation_happens_before_any_compilation(monkeypatch):
    compiled = []
    monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
    from plastix.run import train as train_mod

    with pytest.raises(ConfigError):
        train_mod.run(dataclasses.replace(RunConfig(), env="MiniGrid-Nope-v0"))
    assert not compiled


def test_dict_configs_reject_unknown_fields():
    with pytest.raises(ConfigError, match="total_step: unknown field .*total_steps"):
        from_dict({"total_step": 10})
    with pytest.raises(ConfigError, match="ppo.lrr: unknown field"):
        from_dict({"ppo": {"lrr": 1.0}})
    assert from_dict({"net": {"hidden": [32, 32]}}).net.hidden == (32, 32)
    assert from_dict({"ppo": {"lr": "1e-4"}}).ppo.lr == 1e-4  # YAML 1.1 reads 1e-4 as a string
    assert from_dict({"net": {"moe": {"kind": "soft", "experts": 1}}}).net.moe.experts == 1


def test_recipes():
    from plastix.run.config import list_recipes

    assert load_recipe("quickstart").env == "MiniGrid-DoorKey-5x5-v0"
    expected = {"quickstart", "ppo_softmoe_doorkey", "ppo_decoupled_impala", "regrama_demo",
                "representations_shared", "representations_decoupled", "dqn_minigrid", "der_minigrid",
                "redo_dqn_minigrid"}
    assert expected <= set(list_recipes())
    for name in list_recipes():
        validate(load_recipe(name))
    assert load_recipe("ppo_softmoe_doorkey").net.moe.kind == "soft"
    unknown = r"recipe: unknown recipe 'quick' \(did you mean quickstart\?\); accepted: .*quickstart"
    with pytest.raises(ConfigError, match=unknown):
        load_recipe("quick")


def test_resume_of_missing_or_foreign_directory(tmp_path):
    with pytest.raises(ResumeError, match="does not exist"):
        resume(tmp_path / "nope")
    with pytest.raises(ResumeError, match="no config.yaml"):
        resume(tmp_path)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "plastix.cli", "train", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_clear_message(tmp_path):
    out = _cli("--env", "MiniGrid-Emptyy-5x5-v0", "--out-dir", str(tmp_path))
    assert out.returncode == 2 and "env: unknown env id" in out.stdout
    assert "MiniGrid-Empty-5x5-v0" in out.stdout and "Traceback" not in out.stdout + out.stderr
    out = _cli("--total-steps", "abc")
    assert out.returncode != 0 and "--total-steps" in out.stderr + out.stdout
    out = _cli("--recipe", "nope")
    assert out.returncode == 2 and "recipe: unknown recipe" in out.stdout
    out = _cli("--resume", str(tmp_path / "missing"))
    assert out.returncode == 2 and "resume:" in out.stdout
    assert not list(tmp_path.iterdir())  # nothing was created
