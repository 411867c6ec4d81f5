import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { HTTP } from 'cloudevents';
import { EventTypes, buildEvent } from '../events/index.ts';
import type { KubePort } from '../runtime/kube.ts';
import { Resources } from '../runtime/resources.ts';

// `mlops bootstrap [--broker URL]`: ask storage-bootstrap to run now (ADR-023, docs/storage.md "Bootstrap"); the
// outcome lands in the ConfigMap storage-bootstrap-status, which `mlops status` shows.

const CLI_SENDER = 'mlops-cli';
const STATUS_CONFIGMAP = 'storage-bootstrap-status';

export async function runBootstrapRequest(opts: { broker?: string | undefined }): Promise<number> {
  if (!opts.broker) { process.stderr.write('mlops bootstrap: no broker URL (pass --broker URL or set MLOPS_BROKER; `mlops dev` prints it)\n'); return 2; }
  const event = buildEvent(EventTypes.storageBootstrapRequested, { step: CLI_SENDER, id: randomUUID(), subject: 'storage', data: { requestedBy: safeUser() } });
  const message = HTTP.binary(event);
  const res = await fetch(opts.broker, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  if (res.status >= 300) { process.stderr.write(`mlops bootstrap: broker answered ${res.status}\n`); return 1; }
  process.stdout.write(`requested the storage bootstrap (event ${event.id}); the result: mlops status, or kubectl get configmap ${STATUS_CONFIGMAP} -o yaml\n`);
  return 0;
}

/** One line for `mlops status`: the last storage check, or nothing when there never was one. */
export async function storageStatusLine(kube: KubePort): Promise<string | undefined> {
  const cm = await kube.get<{ metadata?: object; data?: Record<string, string> }>(Resources.configMap, STATUS_CONFIGMAP);
  const d = cm?.data;
  if (!d?.state) return undefined;
  const when = d.checkedAt ?? d.startedAt ?? '';
  const detail = d.state === 'failed' ? `: ${d.stage ?? '?'}/${d.reason ?? '?'}: ${d.message ?? ''}`
    : d.state === 'validated' ? `: ${countModels(d.models)} S3 model(s) served` : '';
  return `storage: ${d.state} at ${when}${detail}\n`;
}

function countModels(json: string | undefined): number {
  try { const v = JSON.parse(json ?? '[]') as unknown; return Array.isArray(v) ? v.length : 0; } catch { return 0; }
}

function safeUser(): string {
  try { return userInfo().username; } catch { return CLI_SENDER; }
}
