import { createDeps } from './deps.ts';
import { serveStep, type RunningStep } from './host.ts';
import { loadSettings } from './settings.ts';
import type { StepDefinition } from './step.ts';

/**
 * Container entry for one step: settings from the environment once, ports built once, serve on PORT
 * (8080 in Knative), close on SIGTERM so in-flight requests finish (Knative drains before killing).
 */
export async function startFromEnv(step: StepDefinition, env: Readonly<Record<string, string | undefined>>): Promise<RunningStep> {
  const settings = loadSettings({ ...env, FUNCTION: step.name });
  const deps = createDeps(settings);
  const running = await serveStep(step, deps, { port: settings.port, host: env.HOST ?? '0.0.0.0' });
  deps.logger.info({ url: running.url }, 'serving');
  const stop = (): void => { void running.close().then(() => process.exit(0)); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return running;
}
