import { parseAlertmanagerWebhook } from '../../events/index.ts';
import { invalid, permanent, unauthorized } from '../../runtime/errors.ts';
import type { Settings } from '../../runtime/settings.ts';
import type { HttpRequest, StepDefinition, StepDeps, StepReply } from '../../runtime/step.ts';
import { bearerMatches } from './auth.ts';
import { decide } from './decide.ts';
import { sendTrainingRequests } from '../../runtime/intake.ts';
import { faasModule } from '../../runtime/faas.ts';

// Alertmanager webhook (v4) → one training.requested per firing drift alert naming an enabled catalog model.

export const STEP = 'drift-intake';

// "Secret unset" is a deployment problem: say it once per process and settings, not on every request.
const warnedUnset = new WeakSet<Settings>();

export const step: StepDefinition = {
  name: STEP,
  input: 'http',
  async handle(input, deps): Promise<StepReply> {
    if (input.kind !== 'http') throw invalid('drift-intake takes an Alertmanager webhook, not a CloudEvent');
    authenticate(input.request, deps);
    const parsed = parseAlertmanagerWebhook(decodeJson(input.request));
    if (!parsed.ok) throw invalid(`not an Alertmanager v4 webhook: ${parsed.reason}`);

    const actions = decide(parsed.value, deps.catalog);
    const ignored = { resolved: 0, unrelated: 0, unknownModel: 0, disabled: 0 };
    const requests = [];
    for (const action of actions) {
      if (action.kind === 'refuse') throw action.error === 'invalid' ? invalid(action.message) : permanent(action.message);
      if (action.kind === 'request-training') requests.push(action);
      else ignored[action.reason === 'unknown-model' ? 'unknownModel' : action.reason] += 1;
    }
    const events = await sendTrainingRequests(STEP, requests, deps, input.request.headers.traceparent);
    return { kind: 'json', status: 200, body: { accepted: events.length, ignored, events } };
  },
};

function authenticate(request: HttpRequest, deps: StepDeps): void {
  const token = deps.settings.secrets.driftIntakeToken;
  if (!token) {
    if (!warnedUnset.has(deps.settings)) {
      warnedUnset.add(deps.settings);
      deps.logger.error('DRIFT_INTAKE_TOKEN is not set: refusing every webhook with 401');
    }
    throw unauthorized('webhook authentication is not configured');
  }
  if (!bearerMatches(request.headers.authorization, token)) throw unauthorized('missing or wrong bearer token');
}

function decodeJson(request: HttpRequest): unknown {
  const type = request.headers['content-type'];
  if (type !== undefined && !/^application\/([a-z0-9.+-]*\+)?json\b/i.test(type.trim())) {
    throw invalid(`content-type ${JSON.stringify(type.slice(0, 64))} is not JSON`);
  }
  const text = request.rawBody.toString('utf8');
  if (text.trim() === '') throw invalid('empty body: expected an Alertmanager webhook');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid('body is not valid JSON');
  }
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
