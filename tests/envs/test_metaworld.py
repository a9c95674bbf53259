"""Meta-World sets as host envs against metaworld itself: MT10 shapes and one-hot placement, per-env
success (a scripted reach policy succeeds in its env only), reward versions, reproducible seeds, the
meta-RL sets hiding the task, and bad input failing before anything is built."""

import dataclasses

import numpy as np
import pytest

pytest.importorskip("metaworld")

from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # noqa: E402
from metaworld.policies import SawyerReachV3Policy  # noqa: E402

from plastix.envs import make  # noqa: E402
from plastix.envs.metaworld import MetaWorldOptions  # noqa: E402
from plastix.run.config import ConfigError, RunConfig, from_dict, load_recipe, to_dict, validate  # noqa: E402

# the MT10 tasks as Meta-World publishes them (Yu et al. 2019, v3 names), in its order
MT10 = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
        "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3")
CLASS_TO_TASK = {cls.__name__: name for name, cls in ALL_V3_ENVIRONMENTS.items()}


def _tasks_of(group):
    return [CLASS_TO_TASK[c] for c in group.get_attr("task_name")]


def test_mt10_shapes_and_one_hot_per_env():
    family = make("Meta-World/MT10")
    spec = family.spec
    assert spec.observation_space.shape == (49,) and spec.action_space.shape == (4,)
    assert spec.num_tasks == 10 and spec.max_steps == 500 and not spec.on_device
    assert spec.task_names == MT10
    envs = family.vector(10)
    try:
        obs = envs.reset(np.arange(10))
        assert obs.shape == (10, 49) and obs.dtype == np.float32
        np.testing.assert_array_equal(obs[:, 39:], np.eye(10))
        assert _tasks_of(envs.groups[0]) == list(MT10)  # env j plays task j, whose one-hot is entry j
        obs, reward, terminated, truncated, info = envs.step(np.random.default_rng(0).uniform(-1, 1, (10, 4)))
        assert obs.shape == (10, 49) and reward.shape == (10,) and info["final_obs"].shape == (10, 49)
        assert info["success"].shape == (10,) and info["success"].dtype == bool
        np.testing.assert_array_equal(obs[:, 39:], np.eye(10))
        np.testing.assert_array_equal(info["task"], np.arange(10))  # training statistics split by task
    finally:
        envs.close()


def test_success_is_reported_per_env_for_the_whole_episode():
    """A scripted reach policy solves its env; the others, held still, do not (random actions can reach a
    goal by chance, on some CPUs' arithmetic and not others'). Success stays set from the first successful
    step to the episode's end (where the loop reads it), then clears."""
    family = make("Meta-World/custom-mt", options=MetaWorldOptions(tasks=("reach-v3", "push-v3")))
    assert family.spec.observation_space.shape == (41,)
    envs = family.vector(4)  # two groups: envs 0, 2 reach, envs 1, 3 push
    policy = SawyerReachV3Policy()
    try:
        obs = envs.reset(np.array([3, 4, 5, 6]))
        np.testing.assert_array_equal(obs[:, 39:], np.tile(np.eye(2), (2, 1)))
        assert [_tasks_of(g) for g in envs.groups] == [["reach-v3", "push-v3"]] * 2
        first = None
        for t in range(500):
            actions = np.concatenate([policy.get_action(obs[0, :39])[None], np.zeros((3, 4))])
            obs, _, terminated, truncated, info = envs.step(np.clip(actions, -1, 1))
            if first is None and info["success"][0]:
                first = t
            if first is not None and t < 499:
                assert info["success"][0]
            assert not info["success"][1:].any()
            assert not terminated.any()
        assert first is not None and first < 200
        assert truncated.all() and info["success"][0]  # the 500th step ends the episode, a success
        obs, _, _, _, info = envs.step(np.zeros((4, 4)))
        assert not info["success"][0]  # a new episode
    finally:
        envs.close()


def _rollout(options, seeds, steps=30):
    envs = make("Meta-World/MT1", options=options).vector(2)
    try:
        obs = [envs.reset(seeds)]
        rewards = []
        rng = np.random.default_rng(0)
        for _ in range(steps):
            o, r, *_ = envs.step(rng.uniform(-1, 1, (2, 4)))
            obs.append(o)
            rewards.append(r)
        return np.array(obs), np.array(rewards)
    finally:
        envs.close()


def test_reward_versions_and_reproducible_seeds():
    v2 = MetaWorldOptions(tasks=("push-v3",))
    v1 = dataclasses.replace(v2, reward_version="v1")
    obs_a, rew_a = _rollout(v2, np.array([5, 6]))
    obs_b, rew_b = _rollout(v2, np.array([5, 6]))
    np.testing.assert_array_equal(obs_a, obs_b)  # same seeds, same episode
    np.testing.assert_array_equal(rew_a, rew_b)
    obs_1, rew_1 = _rollout(v1, np.array([5, 6]))
    np.testing.assert_allclose(obs_1, obs_a)  # same dynamics and task draws, other reward
    assert not np.allclose(rew_1, rew_a)
    assert not np.allclose(obs_a[0, 0], obs_a[0, 1])  # each env's own seed: other goal parametrisations


def test_meta_rl_sets_hide_the_task_and_name_their_test_tasks():
    """ML10's split as Meta-World publishes it (Yu et al. 2019); training envs hide the task id."""
    family = make("Meta-World/ML10")
    assert family.spec.observation_space.shape == (39,) and family.spec.num_tasks == 0
    assert family.task_names == ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-close-v3",
                                 "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3",
                                 "sweep-v3", "basketball-v3")
    assert family.test_task_names == ("drawer-open-v3", "door-close-v3", "shelf-place-v3", "sweep-into-v3",
                                      "lever-pull-v3")


def _config(**kw):
    return RunConfig(agent="sac", total_steps=10_000, **kw)


def test_bad_input_fails_before_anything_runs():
    with pytest.raises(ConfigError, match=r"metaworld.tasks: unknown Meta-World task 'reach-v2'.*reach-v3"):
        validate(_config(env="Meta-World/MT1", metaworld=MetaWorldOptions(tasks=("reach-v2",))))
    with pytest.raises(ConfigError, match="metaworld.reward_version: 'v3' is not one of v1, v2"):
        validate(_config(env="Meta-World/MT10", metaworld=MetaWorldOptions(reward_version="v3")))
    with pytest.raises(ConfigError, match="metaworld.tasks: Meta-World/MT1 plays one task"):
        validate(_config(env="Meta-World/MT1"))
    with pytest.raises(ConfigError, match="metaworld.tasks: Meta-World/MT10 fixes its own tasks"):
        validate(_config(env="Meta-World/MT10", metaworld=MetaWorldOptions(tasks=("reach-v3",))))
    with pytest.raises(ConfigError, match="metaworld: the Meta-World options apply to Meta-World/ ids"):
        validate(_config(env="Hopper-v5", metaworld=MetaWorldOptions(tasks=("reach-v3",))))
    with pytest.raises(ConfigError, match="unknown env id 'Meta-World/MT20'.*Meta-World/MT10"):
        validate(_config(env="Meta-World/MT20"))
    with pytest.raises(ConfigError, match="sac.num_envs: Meta-World/MT10 runs one env per task.*15"):
        validate(_config(env="Meta-World/MT10", sac=dataclasses.replace(RunConfig().sac, num_envs=15)))
    # an ML set given to the multi-task recipe: its task ids are hidden
    data = to_dict(load_recipe("mtsac_mt10")) | {"env": "Meta-World/ML10"}
    with pytest.raises(ConfigError, match="sac.task_temperature: needs task ids.*ML sets hide the task"):
        validate(from_dict(data))
    data = to_dict(load_recipe("mtsac_moe_mt10"))
    data["sac"]["actor"]["moe"]["experts"] = 4
    with pytest.raises(ConfigError, match="sac.actor.moe.experts: .*10 tasks.*got 4"):
        validate(from_dict(data))
    data["env"], data["sac"]["task_temperature"] = "Meta-World/ML10", False
    with pytest.raises(ConfigError, match="sac.actor.moe.kind: task routing needs task ids.*MT sets"):
        validate(from_dict(data))
