"""Models and reference data for the gate's baseline comparison tests (config/jobs/gate.py, BASELINE).

Usage: /usr/bin/python3 test/jobs/train_baseline_fixture.py OUT_DIR
Writes OUT_DIR/<case>/model.pkl and OUT_DIR/reference/{anomaly.npz,predictive.csv}; prints {"cases": [...]}.
Data is made like the platform's synthetic data: 45 metrics with injected anomalies (a few features shifted
by several standard deviations, labelled -1), and a five-metric series whose next values the regression
predicts.
  anomaly-good          Pipeline(StandardScaler, IsolationForest(contamination=0.05)) on normal rows
  anomaly-worse         the same with contamination=0.5: flags half of normal traffic
  anomaly-old-sklearn   anomaly-good whose estimators record scikit-learn 0.24.2 in their pickled state
  predictive-good       Pipeline(StandardScaler, MultiOutputRegressor(RandomForest depth 6))
  predictive-weak       the same with depth 3 (the served model the good one improves on)
  predictive-constant   Pipeline(StandardScaler, DummyRegressor(mean)): right shape, predicts a constant
"""
import csv
import json
import os
import sys

import joblib
import numpy as np
import sklearn.base
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import IsolationForest, RandomForestRegressor
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def anomaly_data(rng, rows, anomalies):
    X = rng.normal(size=(rows, 45))
    y = np.ones(rows, dtype=int)
    picked = rng.choice(rows, size=anomalies, replace=False)
    for i in picked:
        cols = rng.choice(45, size=5, replace=False)
        X[i, cols] += rng.choice([-1, 1], size=5) * rng.uniform(5, 8, size=5)
        y[i] = -1
    return X, y


def series(rng, rows):
    X = rng.normal(size=(rows, 5))
    y = np.column_stack([X[:, i] * 0.8 + X[:, (i + 1) % 5] * 0.4 + np.sin(X[:, (i + 2) % 5]) for i in range(5)])
    return X, y + rng.normal(scale=0.05, size=y.shape)


def isolation(contamination):
    X = np.random.default_rng(7).normal(size=(600, 45))
    return Pipeline([('scaler', StandardScaler()),
                     ('model', IsolationForest(random_state=42, n_estimators=60, contamination=contamination))]).fit(X)


def regressor(estimator):
    X, y = series(np.random.default_rng(11), 600)
    return Pipeline([('scaler', StandardScaler()), ('model', estimator)]).fit(X, y)


def dump_with_version(model, path, version):
    """Pickle as if saved by another scikit-learn: BaseEstimator.__getstate__ records `_sklearn_version`."""
    original = sklearn.base.BaseEstimator.__getstate__

    def getstate(self):
        state = original(self)
        if '_sklearn_version' in state:
            state = dict(state, _sklearn_version=version)
        return state

    sklearn.base.BaseEstimator.__getstate__ = getstate
    try:
        joblib.dump(model, path)
    finally:
        sklearn.base.BaseEstimator.__getstate__ = original


def main(out):
    def place(name):
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, 'model.pkl')

    good = isolation(0.05)
    joblib.dump(good, place('anomaly-good'))
    joblib.dump(isolation(0.5), place('anomaly-worse'))
    dump_with_version(good, place('anomaly-old-sklearn'), '0.24.2')
    joblib.dump(regressor(MultiOutputRegressor(RandomForestRegressor(n_estimators=20, max_depth=6, random_state=42))), place('predictive-good'))
    joblib.dump(regressor(MultiOutputRegressor(RandomForestRegressor(n_estimators=20, max_depth=3, random_state=42))), place("predictive-weak"))
    joblib.dump(regressor(DummyRegressor(strategy='mean')), place('predictive-constant'))

    reference = os.path.join(out, 'reference')
    os.makedirs(reference, exist_ok=True)
    X, y = anomaly_data(np.random.default_rng(3), 400, 20)
    np.savez(os.path.join(reference, 'anomaly.npz'), X=X, y=y)
    np.savez(os.path.join(reference, 'anomaly-unlabelled.npz'), X=X)
    X, y = series(np.random.default_rng(5), 300)
    with open(os.path.join(reference, 'predictive.csv'), 'w', newline='') as dst:
        writer = csv.writer(dst)
        writer.writerow(['cpu', 'memory', 'disk', 'network_in', 'network_out'] + ['y_%d' % j for j in range(5)])
        for xs, ys in zip(X.tolist(), y.tolist()):
            writer.writerow(['%.6f' % v for v in xs + ys])
    print(json.dumps({'cases': sorted(os.listdir(out))}))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.stderr.write('usage: train_baseline_fixture.py OUT_DIR\n')
        sys.exit(2)
    main(sys.argv[1])
