#!/usr/bin/env python3
"""Train a small real sklearn model the way the seed notebooks do (the simulated NVJ operator's "notebook").

Usage: train_model.py FEATURES OUTPUT_KIND WIDTH_OR_LABELS OUT_PATH [--bad KIND]
  FEATURES          input width, int >= 1
  OUTPUT_KIND       "label" or "regression"
  WIDTH_OR_LABELS   regression: output width (int); label: JSON list of labels, e.g. [1,-1]
  OUT_PATH          where model.pkl goes (written to a temporary name, then renamed)
  --bad dict        write a pickled dict instead of a model (a notebook bug the gate must reject)
  --bad worse       write a model that loads and predicts the right shape but is clearly worse: an
                    IsolationForest flagging half of normal traffic (contamination 0.5), or a regression
                    predicting the training mean (DummyRegressor); the gate's baseline checks must reject it
  --reference       write the reference data set (.npz: X, y) to OUT_PATH instead of a model, made like the
                    platform's synthetic data: metrics with injected anomalies labelled -1 (labels [1,-1]),
                    or the five-metric series with the targets the regression learns

Models: labels [1,-1] -> Pipeline(StandardScaler, IsolationForest(n_estimators=50)) like the anomaly
notebook; other label sets -> Pipeline(StandardScaler, LogisticRegression) on synthetic labels; regression
-> Pipeline(StandardScaler, MultiOutputRegressor(Ridge)). Prints {"path", "bytes", "kind"} as JSON.
"""
import json
import os
import sys


def targets(X, width):
    features = X.shape[1]
    import numpy as np
    return np.column_stack([X[:, i % features] * 0.8 + X[:, (i + 1) % features] * 0.2 for i in range(width)])


def worse_model(features, kind, spec, X):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    if kind == 'label' and sorted(json.loads(spec)) == [-1, 1]:
        from sklearn.ensemble import IsolationForest
        return Pipeline([('scaler', StandardScaler()),
                         ('model', IsolationForest(random_state=42, n_estimators=50, contamination=0.5))]).fit(X), 'isolation-forest-half'
    if kind == 'regression':
        from sklearn.dummy import DummyRegressor
        return Pipeline([('scaler', StandardScaler()), ('model', DummyRegressor(strategy='mean'))]).fit(X, targets(X, int(spec))), 'constant'
    raise SystemExit('--bad worse supports labels [1,-1] and regression')


def write_reference(features, kind, spec, out):
    import numpy as np
    rng = np.random.default_rng(3)
    rows = 400
    X = rng.normal(size=(rows, features))
    if kind == 'label':
        labels = json.loads(spec)
        normal, anomaly = (1, -1) if sorted(labels) == [-1, 1] else (labels[0], labels[-1])
        y = np.array([normal] * rows)
        for i in rng.choice(rows, size=rows // 20, replace=False):
            cols = rng.choice(features, size=min(5, features), replace=False)
            X[i, cols] += rng.choice([-1, 1], size=len(cols)) * rng.uniform(5, 8, size=len(cols))
            y[i] = anomaly
    else:
        y = targets(X, int(spec)) + rng.normal(scale=0.05, size=(rows, int(spec)))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + '.tmp-reference.npz'
    np.savez(tmp, X=X, y=y)
    os.replace(tmp, out)
    print(json.dumps({'path': out, 'rows': rows, 'kind': 'reference'}))
    return 0


def main(argv):
    bad = None
    if '--bad' in argv:
        i = argv.index('--bad')
        bad = argv[i + 1] if i + 1 < len(argv) else 'dict'
        argv = argv[:i] + argv[i + 2:]
    if len([a for a in argv if a != '--reference']) != 4:
        sys.stderr.write(__doc__)
        return 2
    reference_mode = '--reference' in argv
    plain = [a for a in argv if a != '--reference']
    features = int(plain[0])
    kind = plain[1]
    spec = plain[2]
    out = plain[3]

    import joblib
    import numpy as np
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, features))
    if reference_mode:
        return write_reference(features, kind, spec, out)
    if bad == 'worse':
        model, model_kind = worse_model(features, kind, spec, X)
    elif bad is not None:
        model = {'weights': list(range(2000)), 'kind': 'not a model', 'bad': bad}
        model_kind = 'dict'
    elif kind == 'label':
        labels = json.loads(spec)
        if sorted(labels) == [-1, 1]:
            from sklearn.ensemble import IsolationForest
            model = Pipeline([('scaler', StandardScaler()),
                              ('model', IsolationForest(random_state=42, n_estimators=50))]).fit(X)
            model_kind = 'isolation-forest'
        else:
            from sklearn.linear_model import LogisticRegression
            y = np.array([labels[i % len(labels)] for i in range(len(X))], dtype=object)
            if all(isinstance(l, (int, float)) for l in labels):
                y = y.astype(np.float64)
            model = Pipeline([('scaler', StandardScaler()), ('model', LogisticRegression(max_iter=200))]).fit(X, y)
            model_kind = 'logistic-regression'
    elif kind == 'regression':
        from sklearn.linear_model import Ridge
        from sklearn.multioutput import MultiOutputRegressor
        width = int(spec)
        y = targets(X, width)
        model = Pipeline([('scaler', StandardScaler()),
                          ('model', MultiOutputRegressor(Ridge(alpha=1.0)))]).fit(X, y)
        model_kind = 'ridge'
    else:
        sys.stderr.write('OUTPUT_KIND must be label or regression\n')
        return 2

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + '.tmp-train'
    joblib.dump(model, tmp)
    os.replace(tmp, out)
    print(json.dumps({'path': out, 'bytes': os.path.getsize(out), 'kind': model_kind}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
