import { createDeps } from './deps.ts';
import { serveStep, type RunningStep } from './faas.ts';
import { loadSettings } from './settings.ts';
import type { StepDefinition } from './step.ts';

/**
 * Container entry for one step: settings from the environment once, ports built once, served by
 * faas-js-runtime on PORT (8080 in Knative). The runtime's SIGTERM handler drains in-flight handlers
 * through the module's shutdown and exits (runtime/faas.ts, docs/runtime.md).
 */
export async function startFromEnv(step: StepDefinition, env: Readonly<Record<string, string | undefined>>): Promise<RunningStep> {
  const settings = loadSettings({ ...env, FUNCTION: step.name });
  const deps = createDeps(settings);
  const running = await serveStep(step, deps, { port: settings.port, signals: true });
  deps.logger.info({ url: running.url }, 'serving');
  return running;
}
