"""MarkovSwitchingRegime: best-of-restarts likelihood, BIC choice of the regime count, canonical
(calm -> volatile) labels that are stable across seeds and refits.

One clearly separated 2-regime synthetic market (1,199 return rows; hourly vol 0.4% vs 2.0%) is
shared. statsmodels fits are the slow part (~4 s for a 3-regime fit with random restarts), so the
expensive fit runs once per module.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from quantlib.data import synthetic_ohlcv
from quantlib.regime import MarkovSwitchingRegime, regime_features, select_n_regimes

TRUE_P = np.array([[0.97, 0.03], [0.06, 0.94]])


@pytest.fixture(scope="module")
def market2():
    market = synthetic_ohlcv(1200, seed=3, transition_matrix=TRUE_P,
                             hourly_vol=np.array([0.004, 0.02]), hourly_drift=np.zeros(2),
                             tail_df=4.0)
    return market, regime_features(market.ohlcv, ["returns"])


@pytest.fixture(scope="module")
def fit3(market2):
    # Three regimes on 2-regime data: the likelihood has several nearby optima, so the restarts
    # really end at different log-likelihoods (the point of the restart test).
    _, X = market2
    return MarkovSwitchingRegime(n_regimes=3, n_restarts=3, random_state=0).fit(X)


def _hamilton(x, P, mu, s2):
    """Plain numpy Hamilton filter from the stationary distribution: (log-likelihood, filtered)."""
    vals, vecs = np.linalg.eig(P.T)
    pred = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    pred = pred / pred.sum()
    loglik, out = 0.0, np.empty((len(x), len(mu)))
    for t, xt in enumerate(x):
        joint = pred * norm.pdf(xt, mu, np.sqrt(s2))
        loglik += np.log(joint.sum())
        out[t] = joint / joint.sum()
        pred = out[t] @ P
    return loglik, out


def _params(model):
    return model.transmat_, model.means_[:, 0], model.covars_[:, 0, 0]


def test_fitted_loglik_is_the_best_of_the_restarts(market2, fit3):
    _, X = market2
    x = X.to_numpy()[:, 0]
    # Reproduce every restart directly with statsmodels, as documented: statsmodels' default start,
    # then randomised starts (search_reps=20) seeded from default_rng(random_state), all on the
    # unit-variance series y = s x, s = 1 / std(x).
    y = x * (1.0 / x.std())
    sm_model = MarkovRegression(y, k_regimes=3, trend="c", switching_variance=True)
    rng = np.random.default_rng(0)
    restarts = []
    for r in range(3):
        kwargs = {} if r == 0 else {"search_reps": 20, "rng": int(rng.integers(2**31))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            restarts.append(sm_model.fit(maxiter=100, em_iter=10, disp=False, **kwargs))
    llfs = np.array([res.llf for res in restarts])
    # Optimiser end points move by ~1e-6 with the last bit of the input; the restarts' optima
    # differ by >= 4e-3, so 1e-5 still tells them apart.
    np.testing.assert_allclose(fit3.restart_logliks_, llfs, rtol=0, atol=1e-5)
    # The restarts really differ, and the default start is not the best one: a model that kept
    # the first (or the last) restart would fail below.
    assert np.ptp(llfs) > 0.1
    best = int(np.argmax(llfs))
    assert best != 0
    np.testing.assert_allclose(fit3.results_.params, restarts[best].params, rtol=1e-4)
    # y = s * x with s = 1/std(x), so log p_x(x) = log p_y(y) + n log s: the fitted (original
    # units) log-likelihood is the best scaled restart's plus n log s.
    n = len(x)
    assert fit3.scale_ == pytest.approx(1.0 / x.std(), rel=1e-12)
    assert fit3.loglik_ == pytest.approx(llfs.max() + n * np.log(fit3.scale_), abs=1e-5)
    # ...and it is the likelihood of the fitted parameters, by an independent forward filter.
    loglik, _ = _hamilton(x, *_params(fit3))
    assert loglik == pytest.approx(fit3.loglik_, rel=1e-9)


def test_bic_picks_the_true_two_regimes_and_follows_its_formula(market2, fit3):
    _, X = market2
    x = X.to_numpy()[:, 0]
    n = len(x)
    best, table = select_n_regimes(MarkovSwitchingRegime(n_restarts=1, random_state=0), X, [2, 3])
    for k in (2, 3):
        # Free parameters: K(K-1) transition probabilities, K means, K variances.
        p = k * (k - 1) + 2 * k
        assert table.loc[k, "n_params"] == p
        assert table.loc[k, "bic"] == pytest.approx(-2 * table.loc[k, "loglik"] + p * np.log(n),
                                                    rel=1e-12)
    assert best.n_regimes_ == 2 and bool(table.loc[2, "best"]) and not bool(table.loc[3, "best"])
    assert best.loglik_ == table.loc[2, "loglik"]
    assert _hamilton(x, *_params(best))[0] == pytest.approx(table.loc[2, "loglik"], rel=1e-9)
    # One regime = i.i.d. Gaussian (MLE mean and variance, 2 parameters), computed here.
    bic1 = -2 * norm.logpdf(x, x.mean(), x.std()).sum() + 2 * np.log(n)
    bic2 = table.loc[2, "bic"]
    assert bic2 < bic1 - 100  # the switch is obvious
    assert bic2 < table.loc[3, "bic"]
    assert bic2 < fit3.bic_  # even the best-of-3-restarts 3-regime fit loses
    # AIC (lighter penalty) would pick 3 here: the choice really rests on BIC's p log n.
    assert table.loc[3, "aic"] < table.loc[2, "aic"]


def test_labels_follow_volatility_order(market2, fit3):
    _, X = market2
    x = X.to_numpy()[:, 0]
    res = fit3.results_
    names = res.model.param_names
    raw_s2 = np.array([res.params[names.index(f"sigma2[{i}]")] for i in range(3)])
    raw_mu = np.array([res.params[names.index(f"const[{i}]")] for i in range(3)])
    order = np.argsort(raw_s2)
    # statsmodels' own labelling of this fit is not calm -> volatile, so relabelling is exercised.
    assert not np.array_equal(order, np.arange(3))
    raw_P = np.asarray(res.regime_transition)[..., 0].T  # statsmodels: [to, from] -> [from, to]
    np.testing.assert_allclose(fit3.transmat_, raw_P[np.ix_(order, order)], atol=1e-12)
    np.testing.assert_allclose(fit3.covars_[:, 0, 0], raw_s2[order] / fit3.scale_**2, rtol=1e-12)
    np.testing.assert_allclose(fit3.means_[:, 0], raw_mu[order] / fit3.scale_, rtol=1e-12)
    raw_filtered = np.asarray(res.filtered_marginal_probabilities)
    np.testing.assert_allclose(fit3.predict_proba(X).to_numpy(), raw_filtered[:, order],
                               atol=1e-10)
    assert np.all(np.diff(fit3.covars_[:, 0, 0]) > 0)  # state 0 is the calmest
    # The bars labelled k really are calmer than those labelled k + 1.
    labels = fit3.predict(X).to_numpy()
    realised = [x[labels == k].std() for k in range(3)]
    assert np.all(np.diff(realised) > 0)


def test_labels_are_stable_across_seeds_and_refits(market2, fit3):
    market, X = market2
    # Another seed lands on the same optimum under a different raw statsmodels labelling; the
    # canonical labels still agree (tolerated disagreement: 1% of bars).
    other = MarkovSwitchingRegime(n_regimes=3, n_restarts=2, random_state=1).fit(X)
    assert not np.array_equal(other.order_, fit3.order_)
    assert (other.predict(X).to_numpy() == fit3.predict(X).to_numpy()).mean() >= 0.99
    # Two regimes (the true count): three seeds give the same labelling, and label 0 is the true
    # calm regime (filtered accuracy >= 93%; measured ~94% on these 1,199 bars).
    fits = [MarkovSwitchingRegime(2, n_restarts=2, random_state=s).fit(X) for s in (0, 1, 2)]
    labels = [f.predict(X).to_numpy() for f in fits]
    for lab in labels[1:]:
        assert (lab == labels[0]).mean() >= 0.99
    truth = market.regimes.loc[X.index].to_numpy()
    assert (labels[0] == truth).mean() >= 0.93
    # A refit on the first 700 bars labels those bars like the full-sample fit (<= 2% differ).
    early = MarkovSwitchingRegime(2, n_restarts=1).fit(X.iloc[:700])
    agree = (early.predict(X.iloc[:700]).to_numpy() == labels[0][:700]).mean()
    assert agree >= 0.98
