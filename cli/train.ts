import { randomUUID } from 'node:crypto';
import { HTTP } from 'cloudevents';
import { EventTypes, buildEvent, type TrainingRequested } from '../events/index.ts';
import { userInfo } from 'node:os';

/** `mlops train MODEL ...`: one manual training.requested to the broker. */
export async function runTrain(opts: { model: string | undefined; hours?: string | undefined; dataSource?: string | undefined; ref?: string | undefined; gpu: boolean; broker?: string | undefined }): Promise<number> {
  if (!opts.model) { process.stderr.write('mlops train: MODEL is required\n'); return 2; }
  if (!opts.broker) { process.stderr.write('mlops train: no broker URL (pass --broker URL or set MLOPS_BROKER; `mlops dev` prints it)\n'); return 2; }
  const data: Record<string, unknown> = { model: opts.model, trigger: 'manual', requestedBy: safeUser() };
  if (opts.hours !== undefined) data.trainingHours = Number(opts.hours);
  if (opts.dataSource !== undefined) data.dataSource = opts.dataSource;
  if (opts.ref !== undefined) data.gitRef = opts.ref;
  if (opts.gpu) data.profile = 'gpu';
  let event;
  try {
    event = buildEvent(EventTypes.trainingRequested, { step: 'mlops-cli', model: opts.model, id: randomUUID(), data: data as TrainingRequested });
  } catch (err) {
    process.stderr.write(`mlops train: ${(err as Error).message}\n`);
    return 2;
  }
  const message = HTTP.binary(event);
  const res = await fetch(opts.broker, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  if (res.status >= 300) { process.stderr.write(`mlops train: broker answered ${res.status}\n`); return 1; }
  process.stdout.write(`requested training of ${opts.model} (event ${event.id})\n`);
  return 0;
}

function safeUser(): string {
  try { return userInfo().username; } catch { return 'mlops-cli'; }
}
