// Pure part of notify: which CloudEvents are notifications, where they go (catalog routes), what each
// channel receives (exact rendered content) and which channels a redelivery still owes. No I/O, no clock.
import { createHash } from 'node:crypto';
import { EventTypes, K8S_EVENT_MESSAGE_MAX, clip, isDns1123Label, nounVerbOf, parseEvent, type EventLike } from '../../events/index.ts';
import type { NotificationRoute } from '../../runtime/catalog.ts';
import { Labels, MANAGER } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';
import { NotifyEvents } from './step.ts';

type NounVerb<T extends string> = T extends `dev.mlops.${infer K}.v1` ? K : never;
export type NotifyKey = NounVerb<(typeof NotifyEvents)[number]> | 'dead-letter';
/** Route keys as the catalog names them (`notifications.routes[].events`), one per event notify consumes (step.ts). */
export const NotifyKeys: Readonly<Record<string, NotifyKey>> = Object.fromEntries(NotifyEvents.map((type) => [type, nounVerbOf(type) as NotifyKey]));

const Titles = {
  'training.failed': 'Training failed',
  'training.skipped': 'Training skipped',
  'run.failed': 'Run failed',
  'model.rejected': 'Model rejected by the health gate',
  'deployment.failed': 'Deployment failed',
  'deployment.rolledback': 'Deployment rolled back',
  'deployment.verified': 'Deployment verified',
  'storage.failed': 'Storage bootstrap failed',
  'dead-letter': 'Event dead-lettered',
} as const satisfies Record<NotifyKey, string>;

const Reasons = {
  'training.failed': 'TrainingFailed',
  'training.skipped': 'TrainingSkipped',
  'run.failed': 'RunFailed',
  'model.rejected': 'ModelRejected',
  'deployment.failed': 'DeploymentFailed',
  'deployment.rolledback': 'DeploymentRolledBack',
  'deployment.verified': 'DeploymentVerified',
  'storage.failed': 'StorageBootstrapFailed',
  'dead-letter': 'DeadLetter',
} as const satisfies Record<NotifyKey, string>;

/** The Knative dead-letter extensions that mark an event of any type as dead-lettered. */
export const DeadLetterExtensions = ['knativeerrorcode', 'knativeerrordest', 'knativeerrordata'] as const;

/** Channel names as recorded in `mlops.dev/notified-<type>` ("slack,email,event"). */
export const Channels = ['slack', 'email', 'event'] as const;
export type Channel = (typeof Channels)[number];

export const NotifiedAnnotationPrefix = 'mlops.dev/notified-';
/** On an Event that is its own delivery record (no ModelRun): the channels already delivered. */
export const EventRecordAnnotation = 'mlops.dev/notified-channels';

/** Used when the model is not in the catalog: failures go to Slack and a Kubernetes Event. */
export const DefaultRoutes: readonly NotificationRoute[] = [{
  events: ['training.failed', 'run.failed', 'model.rejected', 'deployment.failed', 'deployment.rolledback', 'storage.failed', 'dead-letter'],
  channels: ['slack', 'kubernetes-event'],
  emailTo: [],
}];

const FIELD_MAX = 1000;

/** A notification-worthy event, normalised: everything the channels render comes from here. */
export interface Notice {
  key: NotifyKey;
  /** `training-failed`, `dead-letter`: label value, annotation suffix, Event name suffix. */
  shortType: string;
  /** Unique per (run, type); dead letters add a hash of the dead-lettered event's source+id. */
  recordKey: string;
  model: string | undefined;
  run: string | undefined;
  ceId: string;
  ceSource: string;
  /** Label/value pairs specific to the event type, in display order. */
  details: Array<[string, string]>;
  /** The error text or failed checks, shown as its own block. */
  problem: string | undefined;
}

export type ParsedNotice = { kind: 'notice'; notice: Notice } | { kind: 'ignored'; reason: string } | { kind: 'invalid'; reason: string };

/** What the ModelRun says about the run (absent when there is no ModelRun). */
export interface RunFacts {
  uid: string | undefined;
  trigger: string | undefined;
  provenance: Record<string, string> | undefined;
  startedAt: string | undefined;
}

export interface NotifyState {
  namespace: string;
  run: RunFacts | undefined;
  /** Channels already recorded as delivered for this notice. */
  delivered: readonly Channel[];
  /** Channels whose secret is configured. */
  configured: { slack: boolean; email: boolean };
}

export interface SlackBlock { type: string; [key: string]: unknown }
export interface SlackMessage { text: string; blocks: SlackBlock[] }

export interface K8sEventObject {
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  involvedObject: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string };
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

export type NotifyAction =
  | { kind: 'slack'; message: SlackMessage }
  | { kind: 'email'; to: string[]; subject: string; text: string; html: string }
  | { kind: 'k8s-event'; event: K8sEventObject };

export interface Plan {
  actions: NotifyAction[];
  /** Routed channels left out because their secret is unset or they have nobody to send to. */
  unconfigured: Channel[];
}

/** CloudEvent → Notice, or why it is not one. Dead-letter extensions win over the type. */
export function toNotice(ce: EventLike & { id?: unknown; source?: unknown; subject?: unknown }): ParsedNotice {
  const ceId = typeof ce.id === 'string' ? ce.id : '';
  const ceSource = typeof ce.source === 'string' ? ce.source : '';
  if (DeadLetterExtensions.some((ext) => ce[ext] !== undefined)) return { kind: 'notice', notice: deadLetterNotice(ce, ceId, ceSource) };
  const key = Object.hasOwn(NotifyKeys, ce.type) ? NotifyKeys[ce.type] : undefined;
  if (!key) return { kind: 'ignored', reason: `type ${ce.type} is not a notification` };
  const parsed = parseEvent(ce);
  if (!parsed.ok) return { kind: 'invalid', reason: parsed.reason };
  const base = { key, shortType: shortTypeOf(key), model: 'model' in parsed.data ? parsed.data.model : undefined, ceId, ceSource };
  const withRun = (run: string | undefined, details: Array<[string, string]>, problem: string | undefined): ParsedNotice => ({
    kind: 'notice',
    notice: { ...base, run, recordKey: run ? base.shortType : `${base.shortType}-${hash8(`${ceSource}\n${ceId}`)}`, details, problem },
  });
  switch (parsed.type) {
    case EventTypes.trainingFailed:
      return withRun(parsed.data.run, [['Profile', parsed.data.profile], ['NVJ phase', parsed.data.phase]], parsed.data.message);
    case EventTypes.trainingSkipped: {
      const d = parsed.data;
      const details: Array<[string, string]> = [['Reason', d.reason]];
      if (d.holder) details.push(['Held by', d.holder]);
      return withRun(d.run, details, d.message);
    }
    case EventTypes.runFailed:
      return withRun(parsed.data.run, [['Step', parsed.data.step], ['Reason', parsed.data.reason]], parsed.data.message);
    case EventTypes.modelRejected: {
      const d = parsed.data;
      const failed = d.failed.map((name) => {
        const check = d.checks.find((c) => c.name === name);
        return check?.message ? `${name}: ${check.message}` : name;
      });
      return withRun(d.run, [['Failed checks', d.failed.join(', ')]], [d.message, ...failed.map((f) => `- ${f}`)].join('\n'));
    }
    case EventTypes.deploymentFailed:
      return withRun(parsed.data.run, [['Release', parsed.data.release], ['Reason', parsed.data.reason]], parsed.data.message);
    case EventTypes.deploymentRolledback:
      return withRun(parsed.data.run, [['Failed release', parsed.data.failedRelease], ['Restored release', parsed.data.restoredRelease ?? 'none']], parsed.data.message);
    case EventTypes.storageFailed: {
      // Not about a run: one notification per failed bootstrap attempt (its event id).
      const d = parsed.data;
      return withRun(undefined, [['Stage', d.stage], ['Reason', d.reason], ...(d.bucket ? [['Bucket', d.bucket] as [string, string]] : [])], d.message);
    }
    case EventTypes.deploymentVerified:
      return withRun(parsed.data.run, [['Release', parsed.data.release], ['Pods', parsed.data.pods.join(', ') || 'none'], ['Probe rows matched', String(parsed.data.matched)]], undefined);
    default:
      return { kind: 'ignored', reason: `type ${ce.type} is not a notification` };
  }
}

function deadLetterNotice(ce: EventLike & { subject?: unknown }, ceId: string, ceSource: string): Notice {
  const model = labelExt(ce.model);
  const run = labelExt(ce.run) ?? labelExt(ce.subject);
  const details: Array<[string, string]> = [
    ['Event type', clip(typeof ce.type === 'string' ? ce.type : 'unknown', 200)],
    ['Event id', clip(ceId, 200)],
    ['Source', clip(ceSource, 200)],
    ['Destination', destinationHost(ce.knativeerrordest) ?? 'unknown'],
    ['Error code', clip(scalarText(ce.knativeerrorcode) ?? 'unknown', 20)],
  ];
  return {
    key: 'dead-letter',
    shortType: 'dead-letter',
    // Several events of one run can be dead-lettered: each is its own notification.
    recordKey: `dead-letter-${hash8(`${ceSource}\n${ceId}`)}`,
    model,
    run,
    ceId,
    ceSource,
    details,
    problem: deadLetterData(ce.knativeerrordata),
  };
}

/** Routes, configuration and already-delivered channels → the exact actions still owed, Event last. */
export function decide(notice: Notice, routes: readonly NotificationRoute[], state: NotifyState, now: Date): Plan {
  const matching = routes.filter((r) => r.events.includes(notice.key));
  const routed = new Set(matching.flatMap((r) => r.channels));
  const emailTo = [...new Set(matching.filter((r) => r.channels.includes('email')).flatMap((r) => r.emailTo))].sort();
  const done = new Set(state.delivered);
  const actions: NotifyAction[] = [];
  const unconfigured: Channel[] = [];
  const content = render(notice, state, now);
  if (routed.has('slack') && !done.has('slack')) {
    if (state.configured.slack) actions.push({ kind: 'slack', message: content.slack });
    else unconfigured.push('slack');
  }
  if (routed.has('email') && !done.has('email')) {
    if (state.configured.email && emailTo.length > 0) actions.push({ kind: 'email', to: emailTo, ...content.email });
    else unconfigured.push('email');
  }
  // Without a ModelRun the Event is the delivery record, so it is written whenever anything was routed.
  const eventOwed = routed.has('kubernetes-event') || (state.run === undefined && routed.size > 0);
  if (eventOwed && !done.has('event')) actions.push({ kind: 'k8s-event', event: k8sEvent(notice, state, now) });
  return { actions, unconfigured };
}

/** Name of the Kubernetes Event (deterministic, so a redelivery meets AlreadyExists). */
export function eventNameOf(notice: Notice): string {
  return `${notice.run ?? notice.model ?? 'model-lifecycle'}.${notice.recordKey}`;
}

export function notifiedAnnotationOf(notice: Notice): string {
  return `${NotifiedAnnotationPrefix}${notice.recordKey}`;
}

/** Dead-letter tally on the ModelRun, read by kube-state-metrics (docs/monitoring.md): a count and a time. */
export const DeadLetterAnnotations = { count: 'mlops.dev/dead-letters', at: 'mlops.dev/dead-lettered-at' } as const;

/**
 * The tally annotations to write when recording `notice` on a run with `annotations`: the count is the number of
 * distinct dead letters recorded (so a redelivery does not count twice), the time moves only for a new one.
 */
export function deadLetterTally(notice: Notice, annotations: Record<string, string> | undefined, now: Date): Record<string, string> {
  if (notice.key !== 'dead-letter') return {};
  const own = notifiedAnnotationOf(notice);
  const prefix = `${NotifiedAnnotationPrefix}dead-letter-`;
  const recorded = new Set(Object.keys(annotations ?? {}).filter((k) => k.startsWith(prefix)));
  const isNew = !recorded.has(own);
  recorded.add(own);
  return { [DeadLetterAnnotations.count]: String(recorded.size), ...(isNew ? { [DeadLetterAnnotations.at]: now.toISOString() } : {}) };
}

/** "slack,email,event" → channels (unknown names dropped). */
export function parseChannels(value: string | undefined): Channel[] {
  if (!value) return [];
  const names = value.split(',').map((s) => s.trim());
  return Channels.filter((c) => names.includes(c));
}

export function formatChannels(channels: Iterable<Channel>): string {
  const set = new Set(channels);
  return Channels.filter((c) => set.has(c)).join(',');
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '0s';
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}h ${m}m ${s}s` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

/** Removes URLs (which may carry webhook tokens or credentials) from free text. */
export function stripUrls(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, '[url]');
}

interface Rendered {
  slack: SlackMessage;
  email: { subject: string; text: string; html: string };
  title: string;
  fields: Array<[string, string]>;
}

function render(notice: Notice, state: NotifyState, now: Date): Rendered {
  const title = Titles[notice.key];
  const model = notice.model ?? 'unknown';
  const fields: Array<[string, string]> = [['Model', model], ['Run', notice.run ?? 'none']];
  if (state.run?.trigger) fields.push(['Trigger', triggerText(state.run)]);
  fields.push(...notice.details);
  const started = state.run?.startedAt ? Date.parse(state.run.startedAt) : Number.NaN;
  if (Number.isFinite(started)) fields.push(['Duration', formatDuration(now.getTime() - started)]);
  const clipped = fields.map(([k, v]): [string, string] => [k, clip(v, FIELD_MAX)]);
  const problem = notice.problem === undefined ? undefined : clip(notice.problem, 2900);
  const footer = `CloudEvent ${notice.ceId} from ${notice.ceSource}`;

  const text = [`${title}: ${model}${notice.run ? ` (${notice.run})` : ''}`, ...clipped.map(([k, v]) => `${k}: ${v}`), ...(problem ? [problem] : [])].join('\n');
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`${title}: ${model}`, 150), emoji: false } },
    // Slack allows at most 10 fields per section.
    ...chunk(clipped, 10).map((part) => ({ type: 'section', fields: part.map(([k, v]) => ({ type: 'mrkdwn', text: `*${slackEscape(k)}*\n${slackEscape(v)}` })) })),
    ...(problem ? [{ type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${slackEscape(problem)}\`\`\`` } }] : []),
    { type: 'context', elements: [{ type: 'mrkdwn', text: slackEscape(footer) }] },
  ];

  const subject = `[model-lifecycle] ${model} ${notice.key} (${notice.run ?? 'no run'})`;
  const emailText = `${text}\n\n${footer}\n`;
  const rows = clipped.map(([k, v]) => `<tr><th align="left">${htmlEscape(k)}</th><td>${htmlEscape(v)}</td></tr>`).join('');
  const html = [
    `<h2>${htmlEscape(`${title}: ${model}`)}</h2>`,
    `<table>${rows}</table>`,
    ...(problem ? [`<pre>${htmlEscape(problem)}</pre>`] : []),
    `<p><small>${htmlEscape(footer)}</small></p>`,
  ].join('\n');
  return { slack: { text, blocks }, email: { subject, text: emailText, html }, title, fields: clipped };
}

function k8sEvent(notice: Notice, state: NotifyState, now: Date): K8sEventObject {
  const at = now.toISOString();
  const labels: Record<string, string> = { [Labels.notificationType]: notice.shortType, [Labels.managedBy]: MANAGER };
  if (notice.model) labels[Labels.model] = notice.model;
  if (notice.run) labels[Labels.run] = notice.run;
  const involvedObject: K8sEventObject['involvedObject'] = {
    apiVersion: Resources.modelRun.apiVersion,
    kind: Resources.modelRun.kind,
    name: notice.run ?? notice.model ?? 'model-lifecycle',
    namespace: state.namespace,
  };
  if (state.run?.uid) involvedObject.uid = state.run.uid;
  const summary = [Titles[notice.key], ...notice.details.map(([k, v]) => `${k}: ${v}`), ...(notice.problem ? [notice.problem] : [])].join('; ');
  return {
    metadata: { name: eventNameOf(notice), namespace: state.namespace, labels },
    involvedObject,
    reason: Reasons[notice.key],
    message: clip(summary, K8S_EVENT_MESSAGE_MAX, { oneLine: true }),
    type: notice.key === 'deployment.verified' || notice.key === 'training.skipped' ? 'Normal' : 'Warning',
    source: { component: 'model-lifecycle-notify' },
    reportingComponent: 'model-lifecycle/notify',
    reportingInstance: 'notify',
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}

function triggerText(run: RunFacts): string {
  const entries = Object.entries(run.provenance ?? {}).filter(([, v]) => v !== '');
  const trigger = run.trigger ?? 'unknown';
  return entries.length ? `${trigger} (${entries.map(([k, v]) => `${k}=${v}`).join(', ')})` : trigger;
}

function shortTypeOf(key: NotifyKey): string {
  return key.replace('.', '-');
}

function hash8(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

function labelExt(value: unknown): string | undefined {
  return typeof value === 'string' && isDns1123Label(value, 52) ? value : undefined;
}

/** Only the host of the failing subscriber: its URL could carry a token. */
function destinationHost(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try { return new URL(value).host || undefined; } catch { return undefined; }
}

/** knativeerrordata is the base64 of the subscriber's (possibly truncated) response body. */
function deadLetterData(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const decoded = /^[A-Za-z0-9+/]+=*$/.test(value) ? Buffer.from(value, 'base64').toString('utf8') : value;
  // eslint-disable-next-line no-control-regex
  return clip(stripUrls(decoded.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '')), 500);
}

function scalarText(value: unknown): string | undefined {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}


function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function htmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}
