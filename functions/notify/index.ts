// notify: the sink for failures, rejections, rollbacks, successes and dead letters. Sends each notice once
// per channel (Slack, email, Kubernetes Event) however often the broker redelivers it: delivered channels
// are recorded on the ModelRun (annotation `mlops.dev/notified-<type>`), or, without a ModelRun, on the
// Event itself, before replying; a failed channel is retried alone (503 after recording the others).
import type { EventLike } from '../../events/index.ts';
import { findModel } from '../../runtime/catalog.ts';
import { invalid, retryable } from '../../runtime/errors.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import { empty, type StepDefinition, type StepDeps } from '../../runtime/step.ts';
import { ConflictError, type KubeObject } from '../../runtime/kube.ts';
import {
  Channels,
  DefaultRoutes,
  EventRecordAnnotation,
  deadLetterTally,
  decide,
  eventNameOf,
  formatChannels,
  notifiedAnnotationOf,
  parseChannels,
  toNotice,
  type Channel,
  type Notice,
  type NotifyAction,
  type RunFacts,
} from './decide.ts';
import { createK8sEvent, sendEmail, sendSlack, type ChannelOutcome } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';

const channelOf = { slack: 'slack', email: 'email', 'k8s-event': 'event' } as const satisfies Record<NotifyAction['kind'], Channel>;
/** Channels whose missing secret was already logged (once per process, not per event). */
const reportedUnconfigured = new Set<Channel>();

export const step: StepDefinition = {
  name: 'notify',
  input: 'cloudevent',
  async handle(input, deps) {
    if (input.kind !== 'event') throw invalid('notify expects a CloudEvent');
    const ce = input.event as unknown as EventLike;
    const parsed = toNotice(ce);
    if (parsed.kind === 'ignored') {
      deps.logger.debug({ reason: parsed.reason }, 'ignored');
      return empty;
    }
    if (parsed.kind === 'invalid') throw invalid(parsed.reason);
    const notice = parsed.notice;
    const model = notice.model ? findModel(deps.catalog, notice.model) : undefined;
    const routes = model ? model.notifications.routes : DefaultRoutes;
    if (!routes.some((r) => r.events.includes(notice.key))) {
      deps.logger.debug({ key: notice.key }, 'no route for this notice');
      return empty;
    }
    await deliver(notice, routes, deps);
    return empty;
  },
};

async function deliver(notice: Notice, routes: typeof DefaultRoutes, deps: StepDeps): Promise<void> {
  const { kube, settings, logger } = deps;
  const modelRun = notice.run ? await getRun(kube, notice.run) : undefined;
  const eventName = eventNameOf(notice);
  // Where delivery is recorded: the ModelRun when there is one, else the Event (written last) itself.
  let delivered: Channel[];
  let recordEvent: KubeObject | undefined;
  if (modelRun) {
    delivered = parseChannels(modelRun.metadata.annotations?.[notifiedAnnotationOf(notice)]);
  } else {
    recordEvent = await kube.get<KubeObject>(Resources.event, eventName);
    const recorded = recordEvent?.metadata?.annotations?.[EventRecordAnnotation];
    delivered = recordEvent ? (recorded === undefined ? [...Channels] : parseChannels(recorded)) : [];
  }
  const { slackWebhookUrl, smtpUrl, smtpFrom } = settings.secrets;
  const plan = decide(notice, routes, {
    namespace: kube.namespace,
    run: modelRun ? runFacts(modelRun) : undefined,
    delivered,
    configured: { slack: Boolean(slackWebhookUrl), email: Boolean(smtpUrl && smtpFrom) },
  }, deps.clock.now());
  for (const channel of plan.unconfigured) {
    if (reportedUnconfigured.has(channel)) continue;
    reportedUnconfigured.add(channel);
    logger.debug({ channel }, 'channel skipped: its secret (or recipient list) is not configured');
  }

  // Concurrent deliveries of one notice (at-least-once, or two triggers replying the same event) must not both
  // send: the first claims the notice on the ModelRun with a compare-and-swap; the others answer 503 and find it
  // recorded when the broker retries. A claim older than CLAIM_TTL_MS (the claimer died) may be taken over.
  if (modelRun && plan.actions.length > 0) await claim(notice, modelRun, deps);

  const succeeded: Channel[] = [];
  const retry: Channel[] = [];
  for (const action of plan.actions) {
    const channel = channelOf[action.kind];
    let result: ChannelOutcome;
    switch (action.kind) {
      case 'slack':
        result = await sendSlack(slackWebhookUrl ?? '', action.message, deps.fetch);
        break;
      case 'email':
        result = await sendEmail(smtpUrl ?? '', { from: smtpFrom ?? '', to: action.to, subject: action.subject, text: action.text, html: action.html });
        break;
      case 'k8s-event':
        // Without a ModelRun the Event carries the record of what was delivered alongside it.
        result = await createK8sEvent(kube, action.event, modelRun ? undefined : formatChannels([...delivered, ...succeeded, 'event']));
        break;
    }
    if (result.outcome === 'ok') {
      succeeded.push(channel);
      continue;
    }
    const fields = { ceId: notice.ceId, channel, key: notice.key, run: notice.run, err: result.error };
    if (result.outcome === 'retry') {
      retry.push(channel);
      logger.warn(fields, 'notification failed; will be retried');
    } else {
      logger.error(fields, 'notification failed permanently; fix the channel configuration');
    }
  }

  await record(notice, deps, modelRun, recordEvent, eventName, delivered, succeeded);
  if (retry.length) throw retryable(`notification channel(s) failed: ${retry.join(', ')}`);
}

const CLAIM_TTL_MS = 120_000;
const claimAnnotationOf = (notice: Notice): string => `${notifiedAnnotationOf(notice).replace('notified-', 'notifying-')}`;
const pointer = (key: string): string => `/metadata/annotations/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;

async function claim(notice: Notice, run: ModelRun, deps: StepDeps): Promise<void> {
  const key = claimAnnotationOf(notice);
  const existing = run.metadata.annotations?.[key];
  const now = deps.clock.now();
  if (existing) {
    const at = Date.parse(existing.split('@')[1] ?? '');
    if (!Number.isNaN(at) && now.getTime() - at < CLAIM_TTL_MS) throw retryable(`another delivery of ${notice.key} for ${notice.run ?? ''} is sending it`);
  }
  const value = `${notice.ceId}@${now.toISOString()}`;
  const ops: object[] = [{ op: 'test', path: '/metadata/resourceVersion', value: run.metadata.resourceVersion }];
  ops.push(run.metadata.annotations ? { op: 'add', path: pointer(key), value } : { op: 'add', path: '/metadata/annotations', value: { [key]: value } });
  try {
    await deps.kube.jsonPatch(Resources.modelRun, run.metadata.name ?? '', ops);
  } catch (err) {
    if (err instanceof ConflictError) throw retryable(`lost the claim on ${notice.key} for ${notice.run ?? ''}; retrying finds it sent`);
    throw err;
  }
}

/** Persist the channels delivered so far before replying, so a redelivery sends only the rest. */
async function record(notice: Notice, deps: StepDeps, modelRun: ModelRun | undefined, recordEvent: KubeObject | undefined, eventName: string,
  delivered: Channel[], succeeded: Channel[]): Promise<void> {
  const fresh = succeeded.filter((c) => !delivered.includes(c));
  if (fresh.length === 0) {
    // Nothing new went out (every channel failed): free the claim so the retry is not held back.
    if (modelRun) await deps.kube.mergePatch(Resources.modelRun, modelRun.metadata.name ?? '', { metadata: { annotations: { [claimAnnotationOf(notice)]: null } } });
    return;
  }
  const value = formatChannels([...delivered, ...succeeded]);
  if (modelRun) {
    // Recording also releases the claim.
    const tally = deadLetterTally(notice, modelRun.metadata.annotations, deps.clock.now());
    await deps.kube.mergePatch(Resources.modelRun, modelRun.metadata.name ?? '', { metadata: { annotations: { ...tally, [notifiedAnnotationOf(notice)]: value, [claimAnnotationOf(notice)]: null } } });
  } else if (recordEvent) {
    await deps.kube.mergePatch(Resources.event, eventName, { metadata: { annotations: { [EventRecordAnnotation]: value } } });
  }
}

function runFacts(run: ModelRun): RunFacts {
  const provenance: Record<string, string> = {};
  for (const [k, v] of Object.entries(run.spec?.provenance ?? {})) if (typeof v === 'string') provenance[k] = v;
  return {
    uid: run.metadata.uid,
    trigger: run.spec?.trigger,
    provenance: Object.keys(provenance).length ? provenance : undefined,
    startedAt: run.status?.startedAt,
  };
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
