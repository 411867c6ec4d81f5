import { parseGitHubPing, parseGitHubPush } from '../../events/index.ts';
import { invalid, unauthorized } from '../../runtime/errors.ts';
import type { Settings } from '../../runtime/settings.ts';
import type { HttpRequest, StepDefinition, StepDeps, StepReply } from '../../runtime/step.ts';
import { signatureMatches } from './auth.ts';
import { decide } from './decide.ts';
import { sendTrainingRequests } from '../../runtime/intake.ts';
import { faasModule } from '../../runtime/faas.ts';

// GitHub webhook → one training.requested per catalog model whose notebook or watch paths a push touched
// on the model's repository and branch.

export const STEP = 'git-intake';

const DELIVERY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const EVENT_NAME = /^[a-z][a-z_]{0,63}$/;

// "Secret unset" is a deployment problem: say it once per process and settings, not on every request.
const warnedUnset = new WeakSet<Settings>();

export const step: StepDefinition = {
  name: STEP,
  input: 'http',
  async handle(input, deps): Promise<StepReply> {
    if (input.kind !== 'http') throw invalid('git-intake takes a GitHub webhook, not a CloudEvent');
    const request = input.request;
    authenticate(request, deps);
    const deliveryId = request.headers['x-github-delivery']?.trim() ?? '';
    if (!DELIVERY_ID.test(deliveryId)) throw invalid(deliveryId ? 'X-GitHub-Delivery is not a delivery id' : 'missing X-GitHub-Delivery header');
    const event = request.headers['x-github-event']?.trim() ?? '';
    if (!EVENT_NAME.test(event)) throw invalid(event ? 'X-GitHub-Event is not an event name' : 'missing X-GitHub-Event header');

    if (event === 'ping') {
      const ping = parseGitHubPing(decodeBody(request));
      if (!ping.ok) throw invalid(`not a GitHub ping: ${ping.reason}`);
      return { kind: 'json', status: 200, body: { pong: true, zen: ping.value.zen } };
    }
    if (event !== 'push') return { kind: 'json', status: 200, body: { ignored: event } };

    const push = parseGitHubPush(decodeBody(request));
    if (!push.ok) throw invalid(`not a GitHub push: ${push.reason}`);
    const actions = decide(push.value, deliveryId, deps.catalog);
    const requests = [];
    const ignored = [];
    for (const action of actions) {
      if (action.kind === 'refuse') throw invalid(action.message);
      if (action.kind === 'request-training') requests.push(action);
      else ignored.push(action.model === undefined ? { reason: action.reason } : { model: action.model, reason: action.reason });
    }
    const events = await sendTrainingRequests(STEP, requests, deps, input.request.headers.traceparent);
    return { kind: 'json', status: 200, body: { accepted: requests.map((r) => r.data.model), events, ignored } };
  },
};

function authenticate(request: HttpRequest, deps: StepDeps): void {
  const secret = deps.settings.secrets.githubWebhookSecret;
  if (!secret) {
    if (!warnedUnset.has(deps.settings)) {
      warnedUnset.add(deps.settings);
      deps.logger.error('GITHUB_WEBHOOK_SECRET is not set: refusing every webhook with 401');
    }
    throw unauthorized('webhook authentication is not configured');
  }
  if (!signatureMatches(request.headers['x-hub-signature-256'], request.rawBody, secret)) {
    throw unauthorized('missing or wrong X-Hub-Signature-256');
  }
}

/** GitHub sends `application/json`, or a form with the JSON in `payload` when the hook is set up that way. */
function decodeBody(request: HttpRequest): unknown {
  const type = (request.headers['content-type'] ?? 'application/json').trim().toLowerCase();
  let text = request.rawBody.toString('utf8');
  if (type.startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw invalid('form body without a payload field');
    text = payload;
  } else if (!/^application\/([a-z0-9.+-]*\+)?json\b/.test(type)) {
    throw invalid(`content-type ${JSON.stringify(type.slice(0, 64))} is neither JSON nor a form`);
  }
  if (text.trim() === '') throw invalid('empty body: expected a GitHub webhook payload');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid('body is not valid JSON');
  }
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
