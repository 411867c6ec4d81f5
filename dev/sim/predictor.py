#!/usr/bin/env python3
"""The model server behind one simulated predictor pod: loads model.pkl once at start (like KServe).

Usage: predictor.py MODEL_PATH
Prints one JSON line {"ready": true, "type": ...} or {"ready": false, "error": ...} after loading, then
answers each JSON line {"id", "instances": [[...]]} on stdin with {"id", "predictions": [...]} or
{"id", "error": "..."} on stdout.
"""
import json
import sys


def reply(obj):
    sys.stdout.write(json.dumps(obj, allow_nan=True) + '\n')
    sys.stdout.flush()


def main(path):
    try:
        import joblib
        import numpy as np
        model = joblib.load(path)
        if not callable(getattr(model, 'predict', None)):
            raise TypeError('%s has no predict method' % type(model).__name__)
    except Exception as err:
        reply({'ready': False, 'error': '%s: %s' % (type(err).__name__, err)})
        return 0
    reply({'ready': True, 'type': type(model).__name__})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get('id')
            X = np.asarray(req['instances'], dtype=np.float64)
            out = model.predict(X)
            reply({'id': req_id, 'predictions': np.asarray(out).tolist()})
        except Exception as err:
            reply({'id': req_id, 'error': '%s: %s' % (type(err).__name__, err)})
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
