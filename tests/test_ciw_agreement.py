"""Cross-check against Ciw, a peer discrete-event simulator, on a multi-class priority
network with several servers: the per-class mean waits agree within their CIs.

With equal exponential service rates, M/M/c non-preemptive priority also has a closed form
(W_k = C(c, a) / (c mu) / ((1 - s_{k-1}) (1 - s_k)), s_k the cumulative load share of
classes 0..k), which both simulators must match.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dispatch import theory
from dispatch.scenario import load_scenario
from dispatch.simulator import simulate
from dispatch.stats import mean_ci
from tests.conftest import scenario_path

ciw = pytest.importorskip("ciw")


def ciw_waits(scen, seed: int) -> dict[str, float]:
    names = [c.name for c in scen.classes]
    net = ciw.create_network(
        arrival_distributions={
            c.name: [ciw.dists.Exponential(c.arrivals.rate)] for c in scen.classes
        },
        service_distributions={
            c.name: [ciw.dists.Exponential(1.0 / c.handling.mean)] for c in scen.classes
        },
        priority_classes={c.name: c.priority for c in scen.classes},
        number_of_servers=[scen.reviewers[0].count],
    )
    ciw.seed(seed)
    q = ciw.Simulation(net)
    q.simulate_until_max_time(scen.horizon)
    out = {}
    recs = q.get_all_records()
    for n in names:
        w = [
            r.waiting_time for r in recs if r.customer_class == n and r.arrival_date >= scen.warmup
        ]
        out[n] = float(np.mean(w))
    return out


def test_multiclass_priority_agrees_with_ciw():
    scen = load_scenario(scenario_path("multiclass_priority"), {"horizon": 15000})
    seeds = range(10)
    ours = [simulate(scen, "priority", s).per_class for s in seeds]
    theirs = [ciw_waits(scen, 1000 + s) for s in seeds]
    c_servers = scen.reviewers[0].count
    lams = [c.arrivals.rate for c in scen.classes]
    w0 = theory.erlang_c(c_servers, sum(lams), 1.0) / c_servers
    cum = 0.0
    for c, lam in zip(scen.classes, lams, strict=True):
        a = [r[c.name]["mean_wait"] for r in ours]
        b = [r[c.name] for r in theirs]
        ma, la, ha = mean_ci(a)
        mb, lb, hb = mean_ci(b)
        # The 95% intervals overlap and the Welch difference interval contains zero.
        assert la <= hb and lb <= ha, (
            f"{c.name}: ours [{la:.4f}, {ha:.4f}] ciw [{lb:.4f}, {hb:.4f}]"
        )
        t = stats.ttest_ind(a, b, equal_var=False)
        assert t.pvalue > 0.05, f"{c.name}: ours {ma:.4f} vs ciw {mb:.4f} (p={t.pvalue:.3f})"
        # And both agree with the closed form.
        expected = w0 / ((1 - cum) * (1 - cum - lam / c_servers))
        cum += lam / c_servers
        assert abs(ma - expected) / expected < 0.03, f"{c.name}: ours {ma:.4f} vs {expected:.4f}"
        assert abs(mb - expected) / expected < 0.03, f"{c.name}: ciw {mb:.4f} vs {expected:.4f}"
