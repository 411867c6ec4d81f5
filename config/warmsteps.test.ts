// `mlops render --warm-steps`: the scale-down delay lands on the warm steps' revision templates and nowhere else.
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { loadCatalog } from '../runtime/catalog.ts';
import { renderManifests, DEFAULT_IMAGE, StepRules } from './render.ts';
import { DEFAULT_SCALE_DOWN_DELAY, SCALE_DOWN_DELAY_ANNOTATION, WARM_STEPS, parseScaleDownDelay, withWarmSteps } from './warmsteps.ts';

type Service = { kind: string; metadata: { name: string }; spec: { template: { metadata: { annotations: Record<string, string> } } } };
const catalog = loadCatalog('config/models.yaml');
const services = (files: Record<string, object[]>): Service[] => (files['knative/services.yaml'] ?? []) as Service[];
const delayOf = (s: Service): string | undefined => s.spec.template.metadata.annotations[SCALE_DOWN_DELAY_ANNOTATION];

test('the warm steps are those whose declarations say so: the ones a run calls again within minutes', () => {
  expect([...WARM_STEPS].sort()).toEqual(['argocd-sync', 'copy-gpu-model', 'gate-health', 'notify', 'restart-predictor', 'track-training', 'verify-endpoint']);
  for (const step of WARM_STEPS) expect(Object.keys(StepRules)).toContain(step);
});

test('without the option no Service has a scale-down delay; with it exactly the warm steps do, the rest unchanged', () => {
  const plain = renderManifests(catalog, { namespace: 'ml', image: DEFAULT_IMAGE });
  const warm = renderManifests(catalog, { namespace: 'ml', image: DEFAULT_IMAGE, warmSteps: '5m' });
  expect(services(plain).map(delayOf).filter((d) => d !== undefined)).toEqual([]);
  expect(services(warm).filter((s) => delayOf(s) === '5m').map((s) => s.metadata.name).sort()).toEqual([...WARM_STEPS].sort());
  for (const [i, s] of services(warm).entries()) {
    const before = services(plain)[i] as Service;
    expect(s.metadata.name).toBe(before.metadata.name);
    const rest = Object.fromEntries(Object.entries(s.spec.template.metadata.annotations).filter(([k]) => k !== SCALE_DOWN_DELAY_ANNOTATION));
    expect(rest).toEqual(before.spec.template.metadata.annotations);
  }
  // Every other file is the same.
  const others = (files: Record<string, object[]>): Record<string, object[]> => Object.fromEntries(Object.entries(files).filter(([k]) => k !== 'knative/services.yaml'));
  expect(others(warm)).toEqual(others(plain));
});

test('delays outside Knative\'s 0s..1h or not a duration are refused', () => {
  expect(parseScaleDownDelay('90s')).toBe(90_000);
  expect(parseScaleDownDelay('10m')).toBe(600_000);
  expect(parseScaleDownDelay('1h')).toBe(3_600_000);
  for (const bad of ['2h', '61m', '10', 'ten minutes', '-5m', '']) expect(() => parseScaleDownDelay(bad)).toThrow();
  expect(() => withWarmSteps([], '3h')).toThrow(/at most 1h/);
});

test('`mlops render --warm-steps` prints the annotation with the default delay; a bad delay exits 2', () => {
  const out = execFileSync(process.execPath, ['bin/mlops.js', 'render', '--warm-steps'], { encoding: 'utf8' });
  const docs = parseAllDocuments(out).map((d) => d.toJS() as Service).filter((o) => o.kind === 'Service');
  expect(docs.filter((s) => delayOf(s) === DEFAULT_SCALE_DOWN_DELAY).map((s) => s.metadata.name).sort()).toEqual([...WARM_STEPS].sort());
  let status = 0;
  try {
    execFileSync(process.execPath, ['bin/mlops.js', 'render', '--scale-down-delay', '2h'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    status = (err as { status: number }).status;
  }
  expect(status).toBe(2);
});
