"""dispatch optimum: exact values against closed forms and an LP, refusals, the table file,
determinism, and the simulator replaying the table (the value within a CI)."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from dispatch.cli import app
from dispatch.errors import ConfigError
from dispatch.optimum import OptimumResult, network_from_scenario, solve_optimum
from dispatch.optimum.space import Space
from dispatch.optimum.study import truncation_study
from dispatch.policies.optimal import Optimal, missed_decisions
from dispatch.scenario import load_scenario, scenario_from_dict
from dispatch.simulator import Simulation, simulate
from dispatch.theory import cmu_order, priority_order_cost
from tests.conftest import scenario_path


def single_server(classes: list[tuple[float, float, float]], count: int = 1) -> dict:
    """(arrival rate, mean handling, holding cost) per class, one group serving all."""
    return {
        "horizon": 1000.0,
        "classes": [
            {
                "name": f"k{i}",
                "holding_cost": h,
                "arrivals": {"kind": "poisson", "rate": lam},
                "handling": {"kind": "exponential", "mean": m},
            }
            for i, (lam, m, h) in enumerate(classes)
        ],
        "reviewers": [
            {"name": "s", "count": count, "classes": [f"k{i}" for i in range(len(classes))]}
        ],
    }


@pytest.mark.parametrize(
    "classes",
    [
        [(0.3, 1.0, 1.0), (0.2, 1.0, 3.0)],
        [(0.2, 0.5, 1.0), (0.1, 1.5, 2.0), (0.1, 1.0, 4.0)],
    ],
)
def test_one_server_optimum_is_the_cmu_order_cost(classes):
    """Cobham + c-mu: the non-preemptive optimum on one server is the c-mu priority order."""
    lam = [c[0] for c in classes]
    mean = [c[1] for c in classes]
    h = [c[2] for c in classes]
    order = cmu_order(h, mean)
    waiting = priority_order_cost(order, lam, mean, [2 * m**2 for m in mean], h)
    in_service = sum(hk * lk * mk for hk, lk, mk in zip(h, lam, mean, strict=True))
    res = solve_optimum(
        scenario_from_dict(single_server(classes)), buffer=10, rtol=2e-6, max_states=60_000
    )
    assert res.converged
    assert res.value == pytest.approx(waiting + in_service, rel=2e-5)
    assert res.upper - res.lower < 1e-8 * res.value


def _brute_force_matrix(space: Space) -> dict[tuple[int, int], float]:
    """The uniformised transitions built state by state, independently of Space._terms."""
    net = space.net
    out: dict[tuple[int, int], float] = {}
    for idx in range(space.n_states):
        *w, s = np.unravel_index(idx, space.shape)
        moves: list[tuple[float, list[int], int]] = []
        for q, a in enumerate(net.arrival):
            nw = list(w)
            nw[q] = min(nw[q] + 1, space.buffers[q])
            moves.append((a, nw, s))
        for c in space.completions[s]:
            for p, inc in c.outcomes:
                nw = [min(x + d, b) for x, d, b in zip(w, inc, space.buffers, strict=True)]
                moves.append((c.rate * p, nw, c.to))
        total = 0.0
        for rate, nw, ns in moves:
            j = int(np.ravel_multi_index((*nw, ns), space.shape))
            out[(idx, j)] = out.get((idx, j), 0.0) + rate / space.rate
            total += rate
        out[(idx, idx)] = out.get((idx, idx), 0.0) + 1 - total / space.rate
    return out


def _lp_optimum(space: Space) -> float:
    """Average-cost LP over occupation measures x(state, decision): an independent solver."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    P = space.matrix().tocsr()
    pairs = []
    for idx in range(space.n_states):
        *w, s = np.unravel_index(idx, space.shape)
        for a in space.actions[s]:
            if all(r.start <= x < r.stop for r, x in zip(a.region, w, strict=True)):
                nw = [x - d for x, d in zip(w, a.dec, strict=True)]
                pairs.append((idx, int(np.ravel_multi_index((*nw, a.to), space.shape))))
    rows, cols, vals = [], [], []
    for k, (x, y) in enumerate(pairs):
        rows.append(x)
        cols.append(k)
        vals.append(1.0)
        row = P.getrow(y)
        for j, p in zip(row.indices, row.data, strict=True):
            rows.append(j)
            cols.append(k)
            vals.append(-p)
    n = space.n_states
    a_eq = coo_matrix((vals, (rows, cols)), shape=(n + 1, len(pairs))).tolil()
    a_eq[n, :] = 1.0
    b_eq = np.zeros(n + 1)
    b_eq[n] = 1.0
    cost = np.array([space.cost.ravel()[y] for _, y in pairs]) / space.rate
    res = linprog(cost, A_eq=a_eq.tocsr(), b_eq=b_eq, bounds=(0, None), method="highs")
    assert res.status == 0
    return float(res.fun) * space.rate


@pytest.mark.parametrize("name,buffer", [("n_model", 5), ("criss_cross", 3)])
@pytest.mark.parametrize("wc", [False, True])
def test_tiny_networks_match_an_lp_and_a_brute_force_chain(name, buffer, wc):
    net = network_from_scenario(load_scenario(scenario_path(name)))
    space = Space(net, (buffer,) * net.n_queues, wc)
    P = space.matrix().tocoo()
    got = {}
    for i, j, v in zip(P.row, P.col, P.data, strict=True):
        got[(int(i), int(j))] = got.get((int(i), int(j)), 0.0) + v
    want = _brute_force_matrix(space)
    assert set(k for k, v in got.items() if v > 1e-15) == set(
        k for k, v in want.items() if v > 1e-15
    )
    assert all(abs(got.get(k, 0.0) - v) < 1e-12 for k, v in want.items())
    rows, sol, _, _ = truncation_study(
        net, buffer=buffer, max_states=space.n_states, work_conserving=wc
    )
    assert sol.value == pytest.approx(_lp_optimum(space), rel=1e-7)


def test_idling_never_beats_work_conserving_by_less_than_zero():
    scen = load_scenario(scenario_path("n_model"))
    net = network_from_scenario(scen)
    _, any_, _, _ = truncation_study(net, buffer=15, max_states=2000)
    _, wc, _, _ = truncation_study(net, buffer=15, max_states=2000, work_conserving=True)
    assert any_.value <= wc.value + 1e-9


REFUSALS = {
    "handling": ("classes.0.handling", {"kind": "lognormal", "mean": 1.0, "cv": 0.5}),
    "arrivals": ("classes.0.arrivals", {"kind": "profile", "rates": [1.0, 0.5]}),
    "shifts": ("reviewers.0.shifts", [{"start": 0, "end": 480}]),
    "fatigue": ("reviewers.0.fatigue", {"drop_per_hour": 0.01, "recovery_per_hour": 0.02}),
    "wellbeing_cap": ("reviewers.0.wellbeing_cap", 3),
    "delay": ("routing.0.delay", {"kind": "exponential", "mean": 2.0}),
    "unstable": ("classes.0.arrivals.rate", 2.0),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_are_one_line_and_exit_2(case):
    key, value = REFUSALS[case]
    import json

    res = CliRunner().invoke(
        app,
        ["optimum", str(scenario_path("criss_cross")), "--set", f"{key}={json.dumps(value)}"],
    )
    assert res.exit_code == 2, res.output
    lines = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "cannot solve" in lines[0]
    assert "Traceback" not in res.output


def test_too_many_states_is_refused_with_the_count():
    res = CliRunner().invoke(
        app,
        ["optimum", str(scenario_path("criss_cross")), "--buffer", "50", "--max-states", "1000"],
    )
    assert res.exit_code == 2
    assert "too many states: 795,906 at buffer 50 (limit 1,000)" in res.stderr


RHO_07 = {"classes.c1.arrivals.rate": 1.3 * 0.7, "classes.c2.arrivals.rate": 0.4 * 0.7}


@pytest.fixture(scope="module")
def n_model_table(tmp_path_factory):
    """The N-model at load 0.7 (mixes fast: short runs have power), solved to 0.01%."""
    scen = load_scenario(scenario_path("n_model"), RHO_07)
    res = solve_optimum(scen, rtol=1e-4)
    assert res.converged
    path = res.save(tmp_path_factory.mktemp("opt") / "policy.npz")
    return scen, res, path


def test_table_round_trips_and_solving_is_deterministic(n_model_table, tmp_path):
    scen, res, path = n_model_table
    back = OptimumResult.load(path)
    assert back.header() == json_roundtrip(res.header())
    assert np.array_equal(back.policy, res.policy) and back.policy.dtype == np.int16
    one = solve_optimum(scen, buffer=30, max_states=10_000)
    two = solve_optimum(scen, buffer=30, max_states=10_000)
    assert one.value == two.value and np.array_equal(one.policy, two.policy)
    (tmp_path / "bad.npz").write_bytes(b"not a table")
    with pytest.raises(ConfigError, match="not a policy table"):
        OptimumResult.load(tmp_path / "bad.npz")


def json_roundtrip(obj):
    import json

    return json.loads(json.dumps(obj))


def test_table_for_another_network_is_refused(n_model_table):
    _, _, path = n_model_table
    with pytest.raises(ConfigError, match="another network"):
        simulate(load_scenario(scenario_path("criss_cross")), "optimal", table=str(path))


def _replay_checks(scen, table_path, horizon: float) -> int:
    """Step the engine event by event; whenever no decision epoch is pending, the table must
    say 'do nothing' in the current state (the simulator missed no decision). Returns the
    number of states checked."""
    scen = scen.model_copy(update={"horizon": horizon, "warmup": 0.0})
    pol = Optimal(table=str(table_path))
    sim = Simulation(scen, pol, seed=5)
    sim.start()
    checked = 0
    while sim.env.peek() < horizon:
        sim.env.step()
        if sim.epoch_pending:  # an on-demand epoch at this instant decides next
            continue
        w, busy = pol.current_state()
        assert not any(any(g) for g in pol.result.decision(w, busy)), (sim.now, w, busy)
        checked += 1
    return checked


def test_simulator_realises_every_decision_of_the_table(n_model_table, tmp_path):
    scen, res, path = n_model_table
    assert missed_decisions(res) == 0
    assert _replay_checks(scen, path, 3000.0) > 5000
    cc = load_scenario(scenario_path("criss_cross"))
    wc = solve_optimum(cc, buffer=12, max_states=20_000, work_conserving=True)
    assert missed_decisions(wc) == 0  # work-conserving: always realised exactly
    idle = solve_optimum(cc, buffer=12, max_states=20_000)
    # Idling allowed: only next to a full buffer (a truncation artefact) may it act after an
    # event the simulator does not stop for; the replay never gets there.
    assert missed_decisions(idle) > 0 and missed_decisions(idle, margin=2) == 0
    for res_cc in (wc, idle):
        path_cc = res_cc.save(tmp_path / f"cc{res_cc.work_conserving}.npz")
        assert _replay_checks(cc, path_cc, 2000.0) > 3000


def _holding(scen, seeds, horizon, **params):
    scen = scen.model_copy(update={"horizon": horizon})
    return np.array(
        [simulate(scen, "optimal", seed=s, **params).overall["holding_cost"] for s in seeds]
    )


def _t_interval(x: np.ndarray) -> tuple[float, float]:
    from scipy.stats import t

    half = t.ppf(0.995, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean() - half, x.mean() + half


def test_simulated_optimal_policy_matches_the_value(n_model_table):
    """Short check, N-model at load 0.7 (8 x 35,000 minutes): the value lies in the 99% CI,
    which is narrower than 6% of it (so a policy 6% worse would be caught)."""
    scen, res, path = n_model_table
    x = _holding(scen, range(8), 40_000.0, table=str(path))
    lo, hi = _t_interval(x)
    assert lo <= res.value <= hi
    assert hi - lo < 0.06 * res.value


@pytest.mark.slow
def test_simulated_optimal_policy_matches_the_value_full(tmp_path):
    """The N-model itself (load 0.9), 10 seeds x 100,000 minutes."""
    scen = load_scenario(scenario_path("n_model"))
    res = solve_optimum(scen)
    path = res.save(tmp_path / "policy.npz")
    x = _holding(scen, range(10), scen.horizon, table=str(path))
    lo, hi = _t_interval(x)
    assert lo <= res.value <= hi
    assert hi - lo < 0.08 * res.value


@pytest.mark.slow
def test_cmu_scenario_optimum_is_the_cmu_order_cost():
    scen = load_scenario(scenario_path("cmu_single_server"))
    c = scen.classes
    lam = [k.arrivals.rate for k in c]
    mean = [k.handling.mean for k in c]
    h = [k.holding_cost for k in c]
    waiting = priority_order_cost(cmu_order(h, mean), lam, mean, [2 * m**2 for m in mean], h)
    in_service = sum(hk * lk * mk for hk, lk, mk in zip(h, lam, mean, strict=True))
    res = solve_optimum(scen, buffer=8, rtol=1e-3, max_states=2_000_000, time_limit=3000)
    assert res.converged
    assert res.value == pytest.approx(waiting + in_service, rel=3e-3)


def test_solving_at_bind_caches_per_network():
    scen = scenario_from_dict(single_server([(0.3, 1.0, 1.0), (0.2, 1.0, 3.0)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = simulate(scen, "optimal", seed=1)
        b = simulate(scen, "optimal", seed=1)
    assert a.to_json() == b.to_json()
    assert a.overall["completed"] > 300


def test_every_state_has_an_allowed_decision():
    for name in ("n_model", "criss_cross"):
        net = network_from_scenario(load_scenario(scenario_path(name)))
        for wc in (False, True):
            space = Space(net, (4,) * net.n_queues, wc)
            V, _ = space.bellman(np.zeros(space.shape))
            assert np.isfinite(V).all()
            ids = set(itertools.chain.from_iterable((a.id for a in acts) for acts in space.actions))
            assert ids == set(range(len(space.action_table)))


def test_abandonment_and_reviewer_groups_match_erlang_a():
    """M/M/3+M as one queue and a group of three: the optimum is Erlang A's mean in system."""
    from dispatch.theory import erlang_a

    data = single_server([(2.5, 1.0, 2.0)], count=3)
    data["classes"][0]["patience"] = {"kind": "exponential", "mean": 4.0}
    res = solve_optimum(scenario_from_dict(data), buffer=20, rtol=1e-7, max_states=20_000)
    assert res.converged
    want = 2.0 * erlang_a(3, 2.5, 1.0, 0.25)["mean_in_system"]
    assert res.value == pytest.approx(want, rel=1e-6)


def test_cli_writes_the_study_both_tables_and_the_figure(tmp_path):
    import json

    path = tmp_path / "two.yaml"
    import yaml

    path.write_text(yaml.safe_dump(single_server([(0.3, 1.0, 1.0), (0.2, 1.0, 3.0)])))
    res = CliRunner().invoke(app, ["optimum", str(path), "--both", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "converged" in res.stdout and "work-conserving optimum" in res.stdout
    for f in ("study.json", "study.csv", "study.png", "policy.npz", "policy_wc.npz"):
        assert (tmp_path / "o" / f).exists(), f
    study = json.loads((tmp_path / "o" / "study.json").read_text())
    assert set(study) == {"any", "work_conserving"}
    back = OptimumResult.load(tmp_path / "o" / "policy_wc.npz")
    assert back.work_conserving and back.value == pytest.approx(study["work_conserving"]["value"])
