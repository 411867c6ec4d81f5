// Test-only steps served through runtime/faas.ts in a child process, as the container serves a step
// (runtime/faas.test.ts). Not in functions/registry.ts, so no image or `mlops serve` can start them.
import { createDeps } from '../runtime/deps.ts';
import { serveStep } from '../runtime/faas.ts';
import { loadSettings } from '../runtime/settings.ts';
import type { StepDefinition } from '../runtime/step.ts';

const dataOf = (input: Parameters<StepDefinition['handle']>[0]): { ms?: number } =>
  (input.kind === 'event' ? input.event.data : undefined) as { ms?: number } | undefined ?? {};

const steps: Record<string, StepDefinition> = {
  // Throws outside any handler's promise: only a process-level handler sees it.
  crash: {
    name: 'crash-step',
    input: 'cloudevent',
    handle: () => {
      setImmediate(() => { throw new Error('boom outside any handler'); });
      return Promise.resolve({ kind: 'empty' });
    },
  },
  // Answers after `data.ms`, and says on stdout when it started, so a test can SIGTERM mid-handler.
  slow: {
    name: 'slow-step',
    input: 'cloudevent',
    handle: async (input) => {
      const id = input.kind === 'event' ? input.event.id : '';
      process.stdout.write(`started ${id}\n`);
      await new Promise((resolve) => setTimeout(resolve, dataOf(input).ms ?? 0));
      return { kind: 'json', status: 200, body: { finished: id } };
    },
  },
};

const step = steps[process.argv[2] ?? ''];
if (!step) throw new Error(`which test step? one of ${Object.keys(steps).join(', ')}`);
const running = await serveStep(step, createDeps(loadSettings({ ...process.env, FUNCTION: step.name })), { port: 0, signals: true });
process.stdout.write(`serving ${step.name} on ${running.url}\n`);
