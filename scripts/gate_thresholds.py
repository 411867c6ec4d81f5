#!/usr/bin/env python3
"""How much two sound retrains of the catalog models differ, to choose the gate's baseline thresholds (docs/gate.md).

Usage: /usr/bin/python3 scripts/gate_thresholds.py [PAIRS]     (numpy + scikit-learn; a few minutes on 2 cores)

Each retrain sees a different data window, as a weekly retrain does. The data and models follow the platform's
notebooks (tosin2013/openshift-aiops-platform):
  anomaly-detector   notebooks/02-anomaly-detection/01-isolation-forest-implementation.ipynb: 5 metrics x 48 h of
                     1-minute samples, normal(50, 10) with 3% of points scaled by 0.3 or 3.0, 9 features per metric
                     (value, 5-minute mean/std/min/max, lag 1, lag 5, diff, pct change) = 45 features; a row is an
                     anomaly when any metric is; Pipeline(RobustScaler, IsolationForest(contamination=0.05,
                     n_estimators=200, random_state=42)) fitted on a 70% stratified split.
  predictive-analytics  src/models/predictive_analytics.py generate_sample_timeseries_data: cpu, memory, disk,
                     network_in, network_out every 5 minutes (daily/weekly seasonality, trend, exponential network
                     noise); RandomForestRegressor(n_estimators=100, max_depth=10) behind a StandardScaler, here
                     predicting the 5 metrics one step ahead from the current 5 (the catalog's 5 in, 5 out).
It also measures the simulated notebook of `mlops dev` (dev/sim/train_model.py) retrained on different seeds, and
the clearly worse models of the baseline-regression scenario. The comparison is config/jobs/gate.py's own code
(metrics, comparison, metric_changes), on a fresh reference window per pair.
Prints one JSON object: per case the largest and median value of each measure over the pairs.
"""
import importlib.util
import json
import os
import sys

import numpy as np
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import IsolationForest, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler, StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location('gate', os.path.join(HERE, '..', 'config', 'jobs', 'gate.py'))
gate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gate)

LABEL = {'kind': 'label', 'baseline': {'anomaly': -1}}
REGRESSION = {'kind': 'regression', 'width': 5}


# ---------------------------------------------------------------- anomaly-detector (the notebook's generator)

def rolling(v, window, fn):
    out = np.empty_like(v)
    for i in range(len(v)):
        out[i] = fn(v[max(0, i - window + 1):i + 1])
    return out


def anomaly_window(rng, minutes):
    columns, anomalous = [], np.zeros(minutes, dtype=bool)
    for _ in range(5):
        v = rng.normal(50, 10, minutes)
        idx = rng.choice(minutes, int(minutes * 0.03), replace=False)
        v[idx] *= rng.choice([0.3, 3.0], len(idx))
        anomalous[idx] = True
        std = rolling(v, 5, lambda w: np.std(w, ddof=1) if len(w) > 1 else np.nan)
        std[0] = std[1]
        lag1, lag5 = np.r_[np.full(1, np.nan), v[:-1]], np.r_[np.full(5, np.nan), v[:-5]]
        lag1[np.isnan(lag1)], lag5[np.isnan(lag5)] = v[0], v[0]
        diff = np.r_[0.0, np.diff(v)]
        pct = np.r_[0.0, np.diff(v) / v[:-1]]
        columns += [v, rolling(v, 5, np.mean), std, rolling(v, 5, np.min), rolling(v, 5, np.max), lag1, lag5, diff, pct]
    X = np.nan_to_num(np.column_stack(columns), nan=0.0, posinf=0.0, neginf=0.0)
    return X, np.where(anomalous, -1, 1)


def anomaly_model(X, y, contamination=0.05):
    X_train, _, _, _ = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    return Pipeline([('scaler', RobustScaler()), ('isolation_forest', IsolationForest(
        contamination=contamination, n_estimators=200, max_samples='auto', max_features=1.0, random_state=42))]).fit(X_train)


# ---------------------------------------------------------------- predictive-analytics (the module's generator)

def series(rng, samples, start_step):
    t = np.arange(start_step, start_step + samples)
    hours = (t * 5 // 60) % 24
    days = (t * 5 // (60 * 24)) % 7
    cpu = np.clip(0.3 + 0.2 * np.sin(2 * np.pi * hours / 24) + 0.1 * np.sin(2 * np.pi * days / 7) + rng.normal(0, 0.05, samples), 0, 1)
    memory = np.clip(0.5 + 0.1 * np.sin(2 * np.pi * hours / 24) + np.linspace(0, 0.2, samples) + rng.normal(0, 0.03, samples), 0, 1)
    disk = np.clip(0.4 + np.linspace(0, 0.3, samples) + rng.normal(0, 0.02, samples), 0, 1)
    business = ((hours >= 9) & (hours <= 17) & (days < 5)).astype(float)
    net_in = 50 + 100 * business + rng.exponential(20, samples)
    net_out = 40 + 80 * business + rng.exponential(15, samples)
    m = np.column_stack([cpu, memory, disk, net_in, net_out])
    return m[:-1], m[1:]


def predictive_model(X, y):
    return Pipeline([('scaler', StandardScaler()), ('model', RandomForestRegressor(n_estimators=100, max_depth=10, random_state=42))]).fit(X, y)


# ---------------------------------------------------------------- the simulated notebook (dev/sim/train_model.py)

def sim_targets(X, width):
    return np.column_stack([X[:, i % X.shape[1]] * 0.8 + X[:, (i + 1) % X.shape[1]] * 0.2 for i in range(width)])


def sim_reference(rng, features, kind, rows=400):
    X = rng.normal(size=(rows, features))
    if kind == 'label':
        y = np.ones(rows, dtype=int)
        for i in rng.choice(rows, size=rows // 20, replace=False):
            cols = rng.choice(features, size=5, replace=False)
            X[i, cols] += rng.choice([-1, 1], size=5) * rng.uniform(5, 8, size=5)
            y[i] = -1
        return X, y
    return X, sim_targets(X, 5) + rng.normal(scale=0.05, size=(rows, 5))


def sim_model(seed, kind, worse=False):
    X = np.random.default_rng(seed).normal(size=(300, 45 if kind == 'label' else 5))
    if kind == 'label':
        return Pipeline([('scaler', StandardScaler()), ('model', IsolationForest(random_state=42, n_estimators=50, contamination=0.5 if worse else 'auto'))]).fit(X)
    estimator = DummyRegressor(strategy='mean') if worse else MultiOutputRegressor(Ridge(alpha=1.0))
    return Pipeline([('scaler', StandardScaler()), ('model', estimator)]).fit(X, sim_targets(X, 5))


# ---------------------------------------------------------------- measures

def measure(candidate, served, X, y, s):
    c, v = candidate.predict(X), served.predict(X)
    if s['kind'] == 'regression':
        c, v = c.astype(np.float64), v.astype(np.float64)
    cmp = gate.comparison(c, v, s)
    changes = gate.metric_changes(gate.metrics(c, y, s), gate.metrics(v, y, s), s['kind'])
    out = {'metricRegression': gate.worst_regression(changes)[1]}
    if s['kind'] == 'label':
        out.update(agreement=cmp['agreement'], rateChange=abs(cmp['rateChange']))
    else:
        out.update(relativeChange=max(cmp['relativeChange']))
    return out


def summary(rows):
    keys = rows[0].keys()
    return {k: {'max': gate.rounded(float(max(r[k] for r in rows))), 'min': gate.rounded(float(min(r[k] for r in rows))),
                'median': gate.rounded(float(np.median([r[k] for r in rows])))} for k in keys}


def main(pairs):
    out = {}
    # anomaly-detector: retrains on different 48 h windows, compared on a fresh 24 h window.
    rows, worse = [], []
    for p in range(pairs):
        rng = np.random.default_rng(100 + p)
        served = anomaly_model(*anomaly_window(rng, 2880))
        candidate = anomaly_model(*anomaly_window(rng, 2880))
        X, y = anomaly_window(rng, 1440)
        rows.append(measure(candidate, served, X, y, LABEL))
        if p < 3:
            worse.append(measure(anomaly_model(*anomaly_window(rng, 2880), contamination=0.5), served, X, y, LABEL))
    out['anomaly-detector retrains'] = summary(rows)
    out['anomaly-detector contamination 0.5 vs a retrain'] = summary(worse)

    # predictive-analytics: retrains on different 30-day windows (5-minute steps), compared on the next week.
    rows, constant, better = [], [], []
    for p in range(pairs):
        rng = np.random.default_rng(200 + p)
        start = int(rng.integers(0, 2016))
        served = predictive_model(*series(rng, 8640, start))
        candidate = predictive_model(*series(rng, 8640, start + 2016))
        X, y = series(rng, 2016, start + 8640 + 2016)
        rows.append(measure(candidate, served, X, y, REGRESSION))
        if p < 3:
            Xc, yc = series(rng, 8640, start)
            constant.append(measure(Pipeline([('s', StandardScaler()), ('m', DummyRegressor(strategy='mean'))]).fit(Xc, yc), served, X, y, REGRESSION))
            # A weak served model (depth-2 forest, R2 0.04-0.16 on cpu/memory/disk) replaced by a sound retrain.
            weak = Pipeline([('s', StandardScaler()), ('m', RandomForestRegressor(n_estimators=20, max_depth=2, random_state=1))]).fit(Xc, yc)
            better.append(measure(candidate, weak, X, y, REGRESSION))
    out['predictive-analytics retrains'] = summary(rows)
    out['predictive-analytics constant vs a retrain'] = summary(constant)
    out['predictive-analytics retrain replacing a weak model'] = summary(better)

    # mlops dev: the simulated notebook on different seeds, on 400-row references like dev writes.
    for kind, name in (('label', 'sim anomaly-detector'), ('regression', 'sim predictive-analytics')):
        s = LABEL if kind == 'label' else REGRESSION
        rows = []
        for p in range(pairs):
            X, y = sim_reference(np.random.default_rng(300 + p), 45 if kind == 'label' else 5, kind)
            rows.append(measure(sim_model(400 + p, kind), sim_model(500 + p, kind), X, y, s))
        out[name + ' retrains'] = summary(rows)
        X, y = sim_reference(np.random.default_rng(3), 45 if kind == 'label' else 5, kind)
        out[name + ' worse vs good'] = summary([measure(sim_model(7, kind, worse=True), sim_model(7, kind), X, y, s)])
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
