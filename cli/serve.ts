import { createDeps } from '../runtime/deps.ts';
import { serveStep, type RunningStep } from '../runtime/faas.ts';
import { loadSettings } from '../runtime/settings.ts';
import { StepLoaders, isStepName, STEP_NAMES } from '../functions/registry.ts';

/**
 * Start one step on faas-js-runtime from the environment (KUBECONFIG, MODEL_CATALOG, K_SINK, secrets), as
 * the container does: FUNCTION picks the step, PORT the port (8080 in Knative). The runtime owns SIGTERM.
 */
export async function serveFromEnv(env: Readonly<Record<string, string | undefined>>, overrides: { step?: string; port?: number } = {}): Promise<RunningStep> {
  const stepName = overrides.step ?? env.FUNCTION;
  if (!stepName || !isStepName(stepName)) {
    throw new Error(`unknown step ${JSON.stringify(stepName ?? '')}; one of: ${STEP_NAMES.join(', ')}`);
  }
  const settings = loadSettings({ ...env, FUNCTION: stepName });
  const step = await StepLoaders[stepName]();
  const deps = createDeps(settings);
  return serveStep(step, deps, { port: overrides.port ?? settings.port, signals: true });
}
