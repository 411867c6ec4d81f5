// issue 12, "During verification the served path already holds the unverified model: an old-release predictor pod
// that restarts (node drain, crash, scale-up) loads it". The fix is per-release folders and a predictor that takes
// its folder from ITS OWN pod's `mlops.dev/model-release` annotation (docs/storage.md). This runs the example
// InferenceServices' exact container command (config/examples/inferenceservices.yaml) with the env the downward API
// gives a pod, and a stand-in `python` on PATH that records the arguments the sklearn server would get. A predictor
// with a plain --model_dir=/mnt/models/<model> fails it (a restarted old pod would read the shared path); before
// this fix (acbb946) there was no such example at all.
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

interface Container { command: string[]; args: string[]; env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }> }
interface Isvc { metadata: { name: string }; spec: { predictor: { containers: Container[] } } }

const isvcs = parseAllDocuments(readFileSync('config/examples/inferenceservices.yaml', 'utf8')).map((d) => d.toJS() as Isvc).filter((o) => o?.spec?.predictor);

/** What the predictor container would exec, given the annotation the pod carries (undefined: none yet). */
function modelDirOf(c: Container, release: string | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'release-per-pod-'));
  try {
    writeFileSync(join(dir, 'python'), '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n');
    chmodSync(join(dir, 'python'), 0o755);
    const env: Record<string, string> = { PATH: `${dir}:/usr/bin:/bin` };
    for (const e of c.env) {
      if (e.value !== undefined) env[e.name] = e.value;
      // The downward API: an absent annotation gives the empty string.
      else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.annotations['mlops.dev/model-release']") env[e.name] = release ?? '';
    }
    const [shell, ...flags] = c.command;
    const out = execFileSync(shell ?? '/bin/sh', [...flags, ...c.args], { env, encoding: 'utf8' });
    return out.split('\n').find((l) => l.startsWith('--model_dir='))?.slice('--model_dir='.length) ?? '';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('example predictors load the release their own pod names', () => {
  test('there are examples to check', () => { expect(isvcs.map((i) => i.metadata.name).sort()).toEqual(['anomaly-detector', 'predictive-analytics']); });

  test.each(isvcs.map((i) => [i.metadata.name, i] as const))('bug: old-release pod restarting during verification — %s reads its own release folder, never the shared path', (name, isvc) => {
    const c = isvc.spec.predictor.containers[0]!;
    const fromAnnotation = c.env.find((e) => e.valueFrom?.fieldRef?.fieldPath === "metadata.annotations['mlops.dev/model-release']");
    expect(fromAnnotation).toBeDefined();
    // An old pod (annotation: the previous release) restarting while the new release is verified.
    expect(modelDirOf(c, `${name}-00000000p0`)).toBe(`/mnt/models/.releases/${name}/${name}-00000000p0`);
    // A new pod of the release under verification.
    expect(modelDirOf(c, `${name}-00000000a1`)).toBe(`/mnt/models/.releases/${name}/${name}-00000000a1`);
    // Before the first promotion (no annotation yet): the legacy path the platform served from.
    expect(modelDirOf(c, undefined)).toBe(`/mnt/models/${name}`);
  });
});
