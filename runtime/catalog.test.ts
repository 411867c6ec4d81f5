import { parseCatalog, loadCatalog, CatalogError, dataSourceFor, findModel } from './catalog.ts';

describe('model catalog', () => {
  test('the shipped catalog loads with the seed defaults', () => {
    const catalog = loadCatalog('config/models.yaml');
    const anomaly = findModel(catalog, 'anomaly-detector');
    const predictive = findModel(catalog, 'predictive-analytics');
    expect(anomaly).toMatchObject({
      profile: 'cpu', trainingHours: 168, features: { count: 45 }, output: { kind: 'label', labels: [1, -1] },
      schedule: { cron: '0 2 * * 0', timezone: 'UTC' }, gate: { minBytes: 1000 }, protocol: 'v1',
      drift: { alerts: ['ModelDriftDetected'], modelLabel: 'model', cooldownMinutes: 360 }, concurrency: 'skip',
    });
    expect(predictive).toMatchObject({
      profile: 'gpu', trainingHours: 720, features: { count: 5, names: ['cpu', 'memory', 'disk', 'network_in', 'network_out'] },
      output: { kind: 'regression', width: 5 }, schedule: { cron: '0 3 * * 0', timezone: 'UTC' },
      gpu: { resourceName: 'nvidia.com/gpu', count: 1 }, storage: { gpuPvc: 'model-storage-gpu-pvc' },
    });
    // defaults merge deeply: the model's own path survives next to the shared git url
    expect(anomaly?.notebook.gitUrl).toBe('https://github.com/tosin2013/openshift-aiops-platform.git');
    expect(predictive?.deadlines).toEqual({ trainingMinutes: 480, copyMinutes: 30, gateMinutes: 15, promoteMinutes: 10, verifyMinutes: 15 });
  });

  test('the shipped catalog describes the platform it replaces: notebooks, scheduled data, default overrides', () => {
    const catalog = loadCatalog('config/models.yaml');
    const anomaly = findModel(catalog, 'anomaly-detector')!;
    const predictive = findModel(catalog, 'predictive-analytics')!;
    expect(anomaly.notebook.path).toBe('notebooks/02-anomaly-detection/01-isolation-forest-implementation.ipynb');
    expect(predictive.notebook.path).toBe('notebooks/02-anomaly-detection/05-predictive-analytics-kserve.ipynb');
    for (const m of [anomaly, predictive]) {
      expect(dataSourceFor(m, 'schedule')).toBe('prometheus');
      expect(dataSourceFor(m, 'catchup')).toBe('prometheus');
      expect(dataSourceFor(m, 'manual')).toBe('synthetic');
      expect(dataSourceFor(m, 'drift')).toBe('synthetic');
      expect(m.overrides).toEqual({ gitRef: ['git-intake'], notebookPath: [], dataSource: ['*'], trainingHours: ['*'], profile: ['*'] });
    }
  });

  test('dataSource is one value for every trigger or a default plus per-trigger values', () => {
    const doc = (ds: string) => `
models:
  - name: m
    inferenceService: m
    notebook: { gitUrl: https://example.com/r.git, gitRef: main, path: nb/m.ipynb, image: img }
    features: { count: 1 }
    output: { kind: regression, width: 1 }
    dataSource: ${ds}
`;
    const one = parseCatalog(doc('hybrid')).models[0]!;
    expect([dataSourceFor(one, 'schedule'), dataSourceFor(one, 'manual')]).toEqual(['hybrid', 'hybrid']);
    const per = parseCatalog(doc('{ default: prometheus, manual: synthetic }')).models[0]!;
    expect([dataSourceFor(per, 'schedule'), dataSourceFor(per, 'manual')]).toEqual(['prometheus', 'synthetic']);
    expect(() => parseCatalog(doc('{ schedule: prometheus }'))).toThrow(/dataSource/);
    expect(() => parseCatalog(doc('{ default: csv }'))).toThrow(/dataSource/);
  });

  test('a model cannot live in another namespace: owner references cannot cross namespaces', () => {
    let caught: unknown;
    try {
      parseCatalog(`
models:
  - name: m
    namespace: elsewhere
    inferenceService: m
    notebook: { gitUrl: https://example.com/r.git, gitRef: main, path: nb/m.ipynb, image: img }
    features: { count: 1 }
    output: { kind: regression, width: 1 }
`, 'ns.yaml');
    } catch (err) { caught = err; }
    expect((caught as CatalogError).problems).toEqual([
      'models[0].namespace: not supported: ModelRuns, NVJs, Jobs, PVCs and InferenceServices share the namespace the functions are installed in (owner references cannot cross namespaces); use mlops render --namespace',
    ]);
  });

  test('an override policy names step senders or *', () => {
    expect(() => parseCatalog(`
models:
  - name: m
    inferenceService: m
    notebook: { gitUrl: https://example.com/r.git, gitRef: main, path: nb/m.ipynb, image: img }
    features: { count: 1 }
    output: { kind: regression, width: 1 }
    overrides: { gitRef: ["/model-lifecycle/git-intake"], command: ["*"] }
`)).toThrow(/overrides\.gitRef\[0\]: must be a step name[\s\S]*overrides: Unrecognized key: "command"/);
  });

  test('a custom model needs only the required fields', () => {
    const catalog = parseCatalog(`
models:
  - name: churn
    inferenceService: churn-predictor
    notebook: { gitUrl: https://example.com/r.git, gitRef: main, path: nb/churn.ipynb, image: img }
    features: { count: 12 }
    output: { kind: regression, width: 1 }
`);
    expect(catalog.models[0]).toMatchObject({ name: 'churn', profile: 'cpu', enabled: true, features: { count: 12 } });
  });

  test('baseline thresholds, reference data and the serving runtime (docs/gate.md)', () => {
    const model = (extra: string): string => `
models:
  - name: churn
    inferenceService: churn-predictor
    notebook: { gitUrl: https://example.com/r.git, gitRef: main, path: nb/churn.ipynb, image: img }
    features: { count: 12 }
    output: { kind: label, labels: [1, -1] }
${extra}`;
    const catalog = parseCatalog(model(`    referenceData: { path: reference/churn.csv }
    serving: { sklearnVersion: "1.5" }
    gate:
      baseline: { minAgreement: 0.9, maxRateChange: 0.1, triggers: { drift: { advisory: [] } } }`));
    expect(catalog.models[0]).toMatchObject({
      referenceData: { path: 'reference/churn.csv' }, serving: { sklearnVersion: '1.5' },
      gate: { minBytes: 1000, baseline: { minAgreement: 0.9, maxRateChange: 0.1, triggers: { drift: { advisory: [] } } } },
    });
    const problems = (extra: string): readonly string[] => {
      try { parseCatalog(model(extra)); } catch (err) { return (err as CatalogError).problems; }
      return [];
    };
    expect(problems('    gate: { baseline: { minAgreement: 0.9 } }')).toEqual(['models[0].referenceData: gate.baseline needs referenceData (the rows both models predict on)']);
    expect(problems('    referenceData: { path: ../x.npz }')).toEqual(['models[0].referenceData.path: must be a relative path on the PVC ending in .npz or .csv']);
    expect(problems('    referenceData: { path: x.parquet }')).toHaveLength(1);
    expect(problems('    referenceData: { path: x.npz }\n    gate: { baseline: { minAgreement: 1.5 } }')).toHaveLength(1);
    expect(problems('    referenceData: { path: x.npz }\n    gate: { baseline: { triggers: { nightly: {} } } }')).toHaveLength(1);
    expect(problems('    serving: { sklearnVersion: latest }')).toEqual(['models[0].serving.sklearnVersion: must be a version like 1.5 or 1.5.2']);
  });

  test('a bad catalog lists every problem with its path', () => {
    const bad = `
models:
  - name: Bad_Name
    inferenceService: x
    notebook: { gitUrl: ftp://x, gitRef: main, path: ../escape.ipynb, image: img }
    features: { count: 0 }
    output: { kind: label, labels: [] }
    schedule: { cron: "every day", timezone: Mars/Olympus }
    colour: red
  - name: x
    inferenceService: x
    notebook: { gitUrl: https://e/r.git, gitRef: main, path: a.ipynb, image: i }
    features: { count: 2, names: [a] }
    output: { kind: regression, width: 1 }
  - name: x
    inferenceService: y
    notebook: { gitUrl: https://e/r.git, gitRef: main, path: a.ipynb, image: i }
    features: { count: 1 }
    output: { kind: regression, width: 1 }
`;
    let caught: unknown;
    try { parseCatalog(bad, 'bad.yaml'); } catch (err) { caught = err; }
    expect(caught).toBeInstanceOf(CatalogError);
    const problems = (caught as CatalogError).problems;
    const paths = problems.map((p) => p.split(':')[0]);
    expect(paths).toEqual(expect.arrayContaining([
      'models[0].name', 'models[0].notebook.gitUrl', 'models[0].notebook.path', 'models[0].features.count',
      'models[0].output.labels', 'models[0].schedule.cron', 'models[0]',
    ]));
    expect((caught as CatalogError).message).toContain('bad.yaml');
  });

  test('cross-field problems are reported once the shape is valid', () => {
    const text = `
models:
  - name: x
    inferenceService: x
    notebook: { gitUrl: https://e/r.git, gitRef: main, path: a.ipynb, image: i }
    features: { count: 2, names: [a] }
    output: { kind: regression, width: 1 }
    schedule: { cron: "0 2 * * 0", timezone: Mars/Olympus }
  - name: x
    inferenceService: y
    notebook: { gitUrl: https://e/r.git, gitRef: main, path: a.ipynb, image: i }
    features: { count: 1 }
    output: { kind: regression, width: 1 }
`;
    expect(() => parseCatalog(text)).toThrow(/models\[1\]\.name: duplicate model name "x"/);
    expect(() => parseCatalog(text)).toThrow(/models\[0\]\.features\.names: has 1 names but count is 2/);
    expect(() => parseCatalog(text)).toThrow(/models\[0\]\.schedule\.timezone: unknown time zone/);
  });

  test('unreadable or non-YAML input fails loudly', () => {
    expect(() => loadCatalog('/nonexistent/models.yaml')).toThrow(/cannot read/);
    expect(() => parseCatalog('models: [unclosed')).toThrow(/not valid YAML/);
    expect(() => parseCatalog('models: []')).toThrow(/models/);
  });
});
