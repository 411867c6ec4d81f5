import { createDeps } from '../runtime/deps.ts';
import { serveStep, type RunningStep } from '../runtime/host.ts';
import { loadSettings } from '../runtime/settings.ts';
import { StepLoaders, isStepName, STEP_NAMES } from '../functions/registry.ts';

/**
 * Start one step over HTTP from the environment (KUBECONFIG, MODEL_CATALOG, K_SINK, secrets). This is also
 * the container entry point: FUNCTION picks the step, PORT the port (8080 in Knative).
 */
export async function serveFromEnv(env: Readonly<Record<string, string | undefined>>, overrides: { step?: string; port?: number; host?: string } = {}): Promise<RunningStep> {
  const stepName = overrides.step ?? env.FUNCTION;
  if (!stepName || !isStepName(stepName)) {
    throw new Error(`unknown step ${JSON.stringify(stepName ?? '')}; one of: ${STEP_NAMES.join(', ')}`);
  }
  const settings = loadSettings({ ...env, FUNCTION: stepName });
  const step = await StepLoaders[stepName]();
  const deps = createDeps(settings);
  return serveStep(step, deps, { port: overrides.port ?? settings.port, host: overrides.host ?? env.HOST ?? '0.0.0.0' });
}
