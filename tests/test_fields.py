"""The logged fields: docs/metrics.md shows exactly the declarations, placeholders match what they stand
for, and a chunk's values reduce as their fields say (by hand)."""

from pathlib import Path

import numpy as np
import pytest

from plastix.agents.dqn import DQN
from plastix.agents.ppo import PPO
from plastix.agents.sac import SAC
from plastix.envs.api import make
from plastix.fields import Field, Reduce, field_of, markdown_table
from plastix.nets.build import NetConfig
from plastix.nets.moe import MOE_FIELDS
from plastix.plasticity.hook import RESET_FIELD, PlasticityConfig, make_hook
from plastix.plasticity.metrics import ACTIVITY_FIELDS
from plastix.run.config import ConfigError, RunConfig
from plastix.run.load import traced_program
from plastix.run.row import ROW_FIELDS, IterationLog, chunk_row, first_nonfinite

DOC = Path(__file__).parents[1] / "docs" / "metrics.md"


def _tables():
    return [ROW_FIELDS, *([f for f in a.fields if f not in MOE_FIELDS] for a in (PPO, DQN, SAC)), MOE_FIELDS,
            (*ACTIVITY_FIELDS, RESET_FIELD)]


def test_docs_metrics_shows_every_declared_field_and_no_other():
    text = DOC.read_text()
    section = text[text.index("## metrics.jsonl"): text.index("## summary.json")]
    for fields in _tables():
        table = markdown_table(fields)
        assert table in section, f"docs/metrics.md should hold this table:\n{table}"
    documented = {line for line in section.splitlines() if line.startswith("| `")}
    declared = {line for fields in _tables() for line in markdown_table(fields).splitlines()
                if line.startswith("| `")}
    assert documented == declared


def test_agents_declare_the_expert_fields_and_distinct_names():
    for agent in (PPO, DQN, SAC):
        assert set(MOE_FIELDS) <= set(agent.fields)
        names = [f.name for f in agent.fields]
        assert len(names) == len(set(names)), agent.name


@pytest.mark.parametrize("key, name", [
    ("activity/dormant", "activity/dormant"),
    ("activity/dormant/torso/Dense_0", "activity/dormant/<layer>"),
    ("moe/critic/torso/moe/entropy", "moe/<layer>/entropy"),
    ("entropy", "entropy"),
    ("episode_return/MiniGrid-Empty-5x5-v0", "episode_return/<task>"),
])
def test_a_key_is_the_field_its_placeholders_fill(key, name):
    assert field_of(ROW_FIELDS + SAC.fields + ACTIVITY_FIELDS, key).name == name


def test_a_key_no_field_declares_is_refused_by_name():
    with pytest.raises(KeyError, match="loss/mystery: no declared field"):
        field_of(ROW_FIELDS + DQN.fields, "loss/mystery")
    assert not Field("activity/dormant/<layer>", "share", "").matches("activity/dormant")
    assert not Field("grad_norm", "L2 norm", "").matches("grad_norm/actor")


def test_the_hook_declares_its_fields_per_network():
    env = make("MiniGrid-Empty-5x5-v0")
    dqn = DQN(env.spec, DQN.config_class(), 10, NetConfig(hidden=(8,)))
    hook = make_hook(dqn, PlasticityConfig(metrics="dormant", reset="redo"))
    assert [f.name for f in hook.fields] == [f.name for f in ACTIVITY_FIELDS] + [RESET_FIELD.name]
    assert all(f.reduce is Reduce.MEASURED for f in hook.fields)


def test_a_chunk_reduces_by_hand():
    # 2 seeds x 3 iterations; seed 1 ends no episode; the middle iteration does not update; activity is
    # measured once (NaN elsewhere); epsilon is read after the last iteration
    nan = np.nan
    log = IterationLog(
        episodes={"episodes": np.array([[1, 0, 2], [0, 0, 0]]),
                  "return_sum": np.array([[3.0, 0, 9.0], [0, 0, 0]]),
                  "length_sum": np.array([[10, 0, 20], [0, 0, 0]]),
                  "task_episodes": np.array([[[1, 0], [0, 0], [1, 1]], [[0, 0]] * 3], float),
                  "task_return_sum": np.array([[[3.0, 0], [0, 0], [4.0, 5.0]], [[0, 0]] * 3])},
        updated=np.array([[True, False, True]] * 2),
        values={"loss/total": np.array([[1.0, 0.0, 3.0], [5.0, 0.0, 7.0]]),
                "epsilon": np.array([[0.9, 0.8, 0.7], [0.9, 0.8, 0.5]]),
                "activity/dormant": np.array([[nan, 0.2, nan], [nan, 0.4, nan]])})
    row = chunk_row(log, ROW_FIELDS + DQN.fields + ACTIVITY_FIELDS, tasks=("a", "b"))
    assert row["episode_return"] == [4.0, None] and row["episode_length"] == [10.0, None]
    assert row["episodes"] == [3, 0] and row["success_rate"] == [None, None]
    assert row["episode_return/a"] == [3.5, None] and row["episode_return/b"] == [5.0, None]
    assert row["updates"] == 2 and row["episode_return_mean"] == 4.0
    assert row["loss/total"] == pytest.approx((1 + 3 + 5 + 7) / 4)  # the skipped iteration's zeros left out
    assert row["epsilon"] == pytest.approx(0.6)
    assert row["activity/dormant"] == pytest.approx(0.3)
    assert first_nonfinite(log) is None
    with pytest.raises(KeyError, match="q/unknown"):
        chunk_row(log.replace(values={"q/unknown": log.values["loss/total"]}), ROW_FIELDS + DQN.fields)
    bad = log.replace(values={**log.values, "loss/total": np.array([[1.0, nan, 3.0], [5.0, 0.0, np.inf]])})
    assert first_nonfinite(bad) == 2  # NaN where no update ran does not count


def test_a_value_no_field_declares_fails_before_compiling(monkeypatch):
    learn = DQN.learn

    def learn_more(self, *args, **kwargs):
        state, metrics = learn(self, *args, **kwargs)
        return state, {**metrics, "loss/extra": metrics["loss/total"]}

    config = RunConfig(env="MiniGrid-Empty-5x5-v0", agent="dqn", total_steps=10_000)
    traced_program(config)[2].close()  # as declared: traced
    monkeypatch.setattr(DQN, "learn", learn_more)
    with pytest.raises(ConfigError, match=r"^loss/extra: an iteration logs it but no field declares it"):
        traced_program(config)
