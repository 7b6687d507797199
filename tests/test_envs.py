"""The Gymnasium environments: API conformance, masks, determinism, reward accounting."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest

from dispatch.model import WAITING
from dispatch.objective import Objective
from dispatch.scenario import load_scenario, scenario_from_dict
from envs.audit_dispatch import AuditDispatchEnv
from envs.batch_dispatch import BatchDispatchEnv
from tests.conftest import scenario_path

ECOM = scenario_path("ecommerce_day")
CMU = scenario_path("cmu_single_server")


def capped_scenario():
    """Two markets x two risk bands, severe live streams and reviewers with a cap of 1."""
    return scenario_from_dict(
        {
            "name": "capped",
            "horizon": 240,
            "markets": ["US", "UK"],
            "risk_bands": [0.5],
            "classes": [
                {
                    "name": "live",
                    "arrivals": {"kind": "poisson", "rate": 1.5},
                    "handling": {"kind": "exponential", "mean": 1.0},
                    "patience": {"kind": "exponential", "mean": 20},
                    "severe_risk_threshold": 0.0,
                    "sla": 10,
                    "harm": {
                        "risk": {"kind": "beta", "a": 2, "b": 2},
                        "reach": {"kind": "lognormal", "mean": 100, "cv": 1},
                    },
                },
                {
                    "name": "listing",
                    "arrivals": {"kind": "poisson", "rate": 1.0},
                    "handling": {"kind": "exponential", "mean": 1.0},
                    "harm": {"risk": {"kind": "beta", "a": 1, "b": 5}},
                },
            ],
            "reviewers": [
                {
                    "name": "us",
                    "count": 2,
                    "classes": ["live", "listing"],
                    "markets": ["US"],
                    "wellbeing_cap": 1,
                    "fatigue": {"drop_per_hour": 0.05, "recovery_per_hour": 0.1},
                },
                {"name": "all", "count": 1, "classes": ["live", "listing"], "wellbeing_cap": 2},
            ],
        }
    )


def masked_random(mask: np.ndarray, rng: np.random.Generator) -> int:
    valid = np.flatnonzero(mask)
    return int(valid[rng.integers(len(valid))])


def rollout(env, seed: int, act_seed: int = 0, max_steps: int | None = None):
    """(observations, rewards, final info) of one masked-random episode."""
    rng = np.random.default_rng(act_seed)
    obs, info = env.reset(seed=seed)
    observations, rewards = [obs], []
    done = False
    while not done:
        if isinstance(env.action_space, gymnasium.spaces.Discrete):
            a = masked_random(env.action_masks(), rng)
        else:
            a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, r, done, trunc, info = env.step(a)
        assert not trunc
        observations.append(obs)
        rewards.append(r)
        if max_steps is not None and len(rewards) >= max_steps:
            break
    return np.array(observations), np.array(rewards), info


# -- API conformance --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [AuditDispatchEnv, BatchDispatchEnv])
def test_gymnasium_and_sb3_env_checkers(cls):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = cls(ECOM, horizon=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


def test_names_and_spaces():
    env = AuditDispatchEnv(ECOM, horizon=30)
    B = env.n_buckets
    assert env.action_space.n == B == len(env.action_names()) == 42
    assert env.observation_space.shape == (9 * B + 7,)
    names = env.observation_names()
    assert len(names) == env.observation_space.shape[0] and len(set(names)) == len(names)
    assert names[0] == f"mean_risk[{env.action_names()[0]}]" and names[-1] == "backlog"
    benv = BatchDispatchEnv(ECOM, horizon=30)
    assert benv.observation_space.shape == (7 * B + 5,)
    assert benv.action_space.shape == (B,) and benv.action_names() == env.action_names()


def test_make_by_id():
    import envs  # noqa: F401 - registers the ids

    env = gymnasium.make("dispatch/AuditDispatch-v0", scenario=str(CMU), horizon=50)
    assert env.spec.max_episode_steps is None
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    env.step(int(np.flatnonzero(info["action_mask"])[0]))
    benv = gymnasium.make("envs:dispatch/BatchDispatch-v0", scenario=str(CMU), horizon=50)
    obs, _ = benv.reset(seed=1)
    assert benv.observation_space.contains(obs)


# -- masks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("scen", ["capped", "ecommerce"])
def test_masks_equal_candidates(scen):
    if scen == "capped":
        env = AuditDispatchEnv(capped_scenario())
    else:
        env = AuditDispatchEnv(ECOM, horizon=150)
    rng = np.random.default_rng(0)
    seen_cap = 0
    for seed in (0, 1):
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            mask = env.action_masks()
            r = env.reviewer
            cands = env.sim.candidates(r)
            assert sorted(np.flatnonzero(mask).tolist()) == sorted(cands)
            assert np.array_equal(info["action_mask"], mask)
            assert env.observation_space.contains(obs)
            at_cap = r.group.cap is not None and r.at_cap(env.sim.now)
            assert obs[-3] == (1.0 if at_cap else 0.0)
            if at_cap:
                seen_cap += 1
                assert not any(env.sim.buckets[b].head().severe for b in cands)
            obs, _, done, _, info = env.step(masked_random(mask, rng))
            assert not info["invalid_action"]
        assert info["invalid_actions"] == 0
        assert not env.action_masks().any()  # terminal: nothing to choose
    if scen == "capped":
        assert seen_cap > 0  # the wellbeing-cap masking was exercised


def test_invalid_actions_fall_back_to_fifo():
    env = AuditDispatchEnv(ECOM, horizon=120)
    env.reset(seed=3)
    for invalid in range(1, 300):
        mask = env.action_masks()
        bad = np.flatnonzero(~mask)
        cands = env.sim.candidates(env.reviewer)
        oldest = min(cands, key=lambda b: (env.sim.buckets[b].head().arrival, b))
        head = env.sim.buckets[oldest].head()
        _, _, done, _, info = env.step(int(bad[0]))
        assert info["invalid_action"] and info["invalid_actions"] == invalid
        assert head.reviewer is not None and head.state != WAITING  # FIFO's task was taken
        if done:
            break
    with pytest.raises(RuntimeError):
        AuditDispatchEnv(CMU, horizon=10).step(0)


# -- determinism ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [AuditDispatchEnv, BatchDispatchEnv])
def test_determinism(cls):
    kw = {"horizon": 90}
    o1, r1, _ = rollout(cls(ECOM, **kw), seed=7)
    o2, r2, _ = rollout(cls(ECOM, **kw), seed=7)
    assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
    o3, r3, _ = rollout(cls(ECOM, **kw), seed=8)
    assert o3.shape != o1.shape or not np.array_equal(o1, o3)
    # sim_seed option: the same simulated day as `dispatch simulate --seed`
    env = cls(ECOM, **kw)
    a, _ = env.reset(seed=1, options={"sim_seed": 5})
    b, _ = env.reset(seed=2, options={"sim_seed": 5})
    assert env.sim.seed == 5 and np.array_equal(a, b)


# -- rewards ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [AuditDispatchEnv, BatchDispatchEnv])
def test_rewards_sum_to_minus_scaled_objective(cls):
    obj = Objective(harm=2.0, sla_breach=0.5)
    env = cls(ECOM, objective=obj.model_dump(), reward_scale=0.3, horizon=120)
    _, rewards, info = rollout(env, seed=4)
    final = obj.cost(env.last_result.overall)
    assert info["episode_cost"] == pytest.approx(final)
    assert rewards.sum() == pytest.approx(-0.3 * final, rel=1e-9, abs=1e-9)
    assert final > 0


def test_holding_cost_reward_is_the_exact_integral():
    scen = load_scenario(CMU, {"horizon": 400, "warmup": 0})
    env = AuditDispatchEnv(scen, reward="holding_cost", reward_scale=0.1)
    _, rewards, info = rollout(env, seed=2)
    sim = env.sim
    T = sim.horizon
    # sum_k c_k x total waiting time in [0, T]: started tasks' waits + still-waiting tasks.
    expected = 0.0
    for ci, c in enumerate(scen.classes):
        w = sim.collector.cls[ci].wait
        expected += c.holding_cost * w.mean * w.n if w.n else 0.0
    for b in sim.buckets:
        for t in b.tasks:
            if t.state == WAITING:
                expected += scen.classes[t.cls].holding_cost * (T - t.arrival)
    assert info["episode_cost"] == pytest.approx(expected, rel=1e-9)
    assert rewards.sum() == pytest.approx(-0.1 * expected, rel=1e-9)
    benv = BatchDispatchEnv(scen, reward="holding_cost", reward_scale=0.1, interval=2.0)
    _, brew, binfo = rollout(benv, seed=2)
    assert brew.sum() == pytest.approx(-0.1 * binfo["episode_cost"], rel=1e-9)


def test_batch_weights_change_decisions():
    costs = []
    for w in (-1.0, 1.0):
        env = BatchDispatchEnv(ECOM, horizon=240)
        env.reset(seed=0, options={"sim_seed": 0})
        action = np.full(env.n_buckets, w, dtype=np.float32)
        action[[i for i, n in enumerate(env.action_names()) if n.startswith("live")]] *= -1
        done = False
        while not done:
            _, _, done, _, info = env.step(action)
        costs.append(info["episode_cost"])
        assert info["greedy_calls"] == 0
    assert costs[0] != costs[1]


# -- vectorised environments ------------------------------------------------------------------
@pytest.mark.parametrize("vec", ["dummy", "subproc"])
def test_vec_envs(vec):
    from functools import partial

    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from dispatch.training import make_env

    fns = [partial(make_env, "pull", {"scenario": str(CMU), "horizon": 60})] * 2
    venv = SubprocVecEnv(fns, start_method="fork") if vec == "subproc" else DummyVecEnv(fns)
    try:
        venv.seed(11)
        obs = venv.reset()
        assert obs.shape == (2, venv.observation_space.shape[0])
        rng = np.random.default_rng(0)
        episodes = 0
        for _ in range(150):
            masks = np.stack(venv.env_method("action_masks"))
            actions = np.array([masked_random(m, rng) for m in masks])
            obs, rewards, dones, infos = venv.step(actions)
            assert not any(i["invalid_action"] for i in infos)
            episodes += int(dones.sum())
        assert episodes >= 2  # auto-reset after the horizon
    finally:
        venv.close()


def test_hybrid_flow_assigner_with_zero_weights_is_the_flow_policy():
    """The hybrid on the flow value model: neutral weights reproduce `flow` exactly, and
    the episode's rewards sum to minus the objective."""
    from dispatch.scenario import load_scenario
    from dispatch.simulator import simulate
    from envs.batch_dispatch import BatchDispatchEnv

    path = "experiments/scenarios/ecommerce_day.yaml"
    env = BatchDispatchEnv(path, horizon=180, assigner="flow", reward_scale=1.0)
    env.reset(seed=0, options={"sim_seed": 4})
    total, done = 0.0, False
    while not done:
        _, r, term, trunc, _ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        total += r
        done = term or trunc
    scen = load_scenario(path, {"horizon": 180})
    expected = simulate(scen, "flow", 4).overall["objective"]
    assert env.last_result.overall["objective"] == expected
    assert total == pytest.approx(-expected, rel=1e-9, abs=1e-6)
