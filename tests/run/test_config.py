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
        (dict(net=NetConfig(hidden=(), torso="residual")), "net.hidden", "positive width"),
        (dict(net=NetConfig(hidden=(32, 0))), "net.hidden", "positive"),
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


# ---------------------------------------------------------------- env x network x agent, traced
NATURE_VALID = NetConfig(encoder=EncoderConfig(kind="nature", padding="VALID"))


@pytest.mark.parametrize("config, field, words", [
    # the 7x7 egocentric view through Nature's 8x8 stride-4 VALID convolutions: no features at all
    (RunConfig(net=NATURE_VALID), "encoder.kind", "maps observations of shape (7, 7, 3) to"),
    (RunConfig(agent="dqn", env="MiniGrid-Empty-5x5-v0", net=NATURE_VALID), "encoder.kind",
     "(7, 7, 3)"),
])
def test_a_program_that_cannot_run_fails_its_trace_before_anything_compiles(tmp_path, monkeypatch, config,
                                                                            field, words):
    from plastix.run import train as train_mod
    from plastix.run.load import check_program

    config = dataclasses.replace(config, out_dir=str(tmp_path), total_steps=50_000, progress=False)
    validate(config)  # each field is fine alone: only the traced program shows the combination fails
    with pytest.raises(ConfigError) as err:
        check_program(config)
    assert str(err.value).startswith(field + ":") and words in str(err.value), str(err.value)
    compiled = []
    monkeypatch.setattr(jax.stages.Lowered, "compile", lambda *a, **k: compiled.append(1))
    monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
    with pytest.raises(ConfigError, match=field):
        train_mod.run(config)
    assert not compiled and not list(tmp_path.iterdir())  # nothing compiled, no run directory


def test_check_runs_the_same_trace_as_training(tmp_path):
    out = _cli("--agent", "dqn", "--env", "MiniGrid-Empty-5x5-v0", "--net.encoder.kind", "nature",
               "--net.encoder.padding", "VALID", "--check")
    assert out.returncode == 2 and "encoder.kind: the nature encoder" in out.stdout, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    out = _cli("--agent", "dqn", "--env", "MiniGrid-Empty-5x5-v0", "--dqn.min-replay", "500", "--check")
    assert out.returncode == 0 and out.stdout.startswith("ok:"), out.stdout + out.stderr


@pytest.mark.parametrize("change, field, words", [
    (dict(agent="dqn", net=NetConfig(moe=MoEConfig(kind="soft", position="final"))), "net.moe.position",
     "middle"),
    (dict(agent="dqn", net=NetConfig(shared="encoder")), "net.shared", "one network"),
    (dict(agent="dqn", net=NetConfig(moe=MoEConfig(kind="soft", placement="actor"))), "net.moe.placement",
     "ppo"),
    (dict(agent="dqn", ppo=PPOConfig(lr=1e-3)), "ppo", "agent is dqn"),
    (dict(ppo=PPOConfig(lr=float("nan"))), "ppo.lr", "finite"),
    (dict(ppo=PPOConfig(clip_eps=-0.1)), "ppo.clip_eps", ">= 0"),
    (dict(ppo=PPOConfig(ent_coef=-0.01)), "ppo.ent_coef", ">= 0"),
    (dict(ppo=PPOConfig(vf_coef=float("inf"))), "ppo.vf_coef", "finite"),
])
def test_settings_that_would_do_nothing_are_refused_by_name(change, field, words):
    base = dict(env="MiniGrid-Empty-5x5-v0", total_steps=100_000)
    if change.get("agent") == "dqn":
        base["dqn"] = dataclasses.replace(RunConfig().dqn, min_replay=1000)
    with pytest.raises(ConfigError) as err:
        validate(dataclasses.replace(RunConfig(), **{**base, **change}))
    assert str(err.value).startswith(field + ":") and words in str(err.value), str(err.value)


def test_sac_refuses_an_expert_placement_it_has_no_use_for():
    critic = NetConfig(moe=MoEConfig(kind="soft", placement="critic"))
    sac = dataclasses.replace(RunConfig().sac, critic=critic)
    with pytest.raises(ConfigError, match=r"^sac.critic.moe.placement: .* for agent ppo"):
        validate(RunConfig(env="Hopper-v5", agent="sac", sac=sac, total_steps=20_000))


@pytest.mark.parametrize("env", ["ALE/Pong-v5", "CALE/Pong-v5", "Meta-World/MT10"])
def test_observation_is_refused_on_envs_without_it(env):
    agent = "sac" if env.startswith(("CALE", "Meta")) else "dqn"
    with pytest.raises(ConfigError, match=r"^observation: .* has no observation option"):
        validate(from_dict({"env": env, "agent": agent, "observation": "full"}))


def test_eval_max_steps_is_refused_where_the_benchmark_has_its_own_protocol():
    with pytest.raises(ConfigError, match=r"^eval_max_steps: Meta-World/MT10 is evaluated by its benchmark"):
        validate(from_dict({"env": "Meta-World/MT10", "agent": "sac", "eval_max_steps": 100,
                            "sac": {"num_envs": 10, "batch_size": 1280}}))


def test_no_two_run_seeds_share_a_stream():
    from plastix.run.load import seed_keys

    keys = {tuple(map(int, k)) for s in range(4)
            for k in seed_keys(dataclasses.replace(RunConfig(), seed=s, seeds=4))}
    assert len(keys) == 16  # PRNGKey(seed + i) gave 7: --seed 1 shared three of --seed 0's streams


@pytest.mark.parametrize("text, words", [
    ("env: [unclosed\n", "not valid YAML at line 2"),
    ("- env\n- agent\n", "expected a mapping of config fields, got a list"),
])
def test_a_bad_recipe_file_is_one_line_naming_it(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{path}: {words}"):
        load_recipe(str(path))
    out = _cli("--recipe", str(path), "--check")
    assert out.returncode == 2 and "Traceback" not in out.stdout + out.stderr and words in out.stdout
