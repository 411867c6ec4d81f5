import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { HTTP } from 'cloudevents';
import { EventTypes, buildEvent, type TrainingRequested } from '../events/index.ts';
import { normalise } from '../functions/start-training/request.ts';
import { CLI_SENDER } from '../functions/start-training/policy.ts';
import { CatalogError, loadCatalog, type Catalog } from '../runtime/catalog.ts';
import { pausedText, readControls, type ModelControls } from '../runtime/controls.ts';
import { createKubePort } from '../runtime/kube.ts';

export interface TrainOptions {
  model: string | undefined;
  hours?: string | undefined;
  dataSource?: string | undefined;
  ref?: string | undefined;
  gpu: boolean;
  broker?: string | undefined;
  /** The catalog start-training runs with (`--catalog`, MODEL_CATALOG, default config/models.yaml). */
  catalogPath: string;
  /** `--force`: train a paused model anyway (docs/day2.md). */
  force?: boolean;
  /** KUBECONFIG / NAMESPACE for reading the model's controls with the user's own credentials. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * `mlops train MODEL ...`: one manual training.requested to the broker. The request is first put through
 * start-training's own normalisation (event schema, catalog lookup, override policy), so what this command
 * sends is what the function accepts, and what it refuses is refused here with the same reason (exit 2).
 */
export async function runTrain(opts: TrainOptions): Promise<number> {
  const fail = (message: string): number => { process.stderr.write(`mlops train: ${message}\n`); return 2; };
  if (!opts.model) return fail('MODEL is required');
  let catalog: Catalog;
  try {
    catalog = loadCatalog(opts.catalogPath);
  } catch (err) {
    return fail(err instanceof CatalogError ? err.message : `cannot load the catalog: ${(err as Error).message}`);
  }
  if (!catalog.models.some((m) => m.name === opts.model)) {
    return fail(`unknown model "${opts.model}": not in the catalog ${opts.catalogPath} (models: ${catalog.models.map((m) => m.name).join(', ')})`);
  }
  const data: Record<string, unknown> = { model: opts.model, trigger: 'manual', requestedBy: safeUser() };
  if (opts.hours !== undefined) data.trainingHours = /^\d+$/.test(opts.hours) ? Number(opts.hours) : opts.hours;
  if (opts.dataSource !== undefined) data.dataSource = opts.dataSource;
  if (opts.ref !== undefined) data.gitRef = opts.ref;
  if (opts.gpu) data.profile = 'gpu';
  if (opts.force) data.force = true;
  let event;
  try {
    event = buildEvent(EventTypes.trainingRequested, { step: CLI_SENDER, model: opts.model, id: randomUUID(), data: data as TrainingRequested });
    normalise(event, catalog);
  } catch (err) {
    return fail((err as Error).message);
  }
  // A paused model (docs/day2.md): start-training would skip the request; say so here, and send only with --force.
  let controls: ModelControls | undefined;
  try {
    const env = opts.env ?? {};
    controls = await readControls(createKubePort({ kubeconfigPath: env.KUBECONFIG, namespace: env.NAMESPACE }), opts.model);
  } catch (err) {
    process.stderr.write(`mlops train: cannot read the model's controls (${(err as Error).message}); start-training still skips a paused model\n`);
  }
  if (controls?.paused && !opts.force) return fail(`model ${opts.model} is ${pausedText(controls.paused)}; pass --force to train it anyway, or \`mlops resume ${opts.model}\``);
  if (!opts.broker) return fail('no broker URL (pass --broker URL or set MLOPS_BROKER; `mlops dev` prints it)');
  const message = HTTP.binary(event);
  const res = await fetch(opts.broker, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  if (res.status >= 300) { process.stderr.write(`mlops train: broker answered ${res.status}\n`); return 1; }
  process.stdout.write(`requested training of ${opts.model} (event ${event.id})\n`);
  return 0;
}

function safeUser(): string {
  try { return userInfo().username; } catch { return 'mlops-cli'; }
}
