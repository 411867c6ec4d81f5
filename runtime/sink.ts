import { readFile } from 'node:fs/promises';
import { HTTP, type CloudEvent } from 'cloudevents';
import { invalid, retryable } from './errors.ts';
import type { EventSink } from './step.ts';

/**
 * Where Knative's SinkBinding mounts the OIDC token for the sink's audience when `authentication-oidc` is on
 * (knative/docs docs/versioned/eventing/features/sender-identity.md). It is refreshed in place, so it is read
 * for every send.
 */
export const OIDC_TOKEN_PATH = '/oidc/token';

async function bearerFrom(path: string): Promise<Record<string, string>> {
  try {
    const token = (await readFile(path, 'utf8')).trim();
    return token ? { authorization: `Bearer ${token}` } : {};
  } catch {
    return {}; // no sender identity configured: the Broker decides whether it takes anonymous events
  }
}

/** POSTs binary-mode CloudEvents to K_SINK. Anything but 2xx is retryable: the caller answers 503. */
export function httpSink(sinkUrl: string | undefined, fetchImpl: typeof fetch = fetch, timeoutMs = 10_000, tokenPath = OIDC_TOKEN_PATH): EventSink {
  return {
    async send(event: CloudEvent<unknown>): Promise<void> {
      if (!sinkUrl) throw invalid('K_SINK is not set: this function cannot emit events (missing SinkBinding)');
      const message = HTTP.binary(event);
      let res: Response;
      try {
        res = await fetchImpl(sinkUrl, {
          method: 'POST',
          headers: { ...(message.headers as Record<string, string>), ...(await bearerFrom(tokenPath)) },
          body: typeof message.body === 'string' ? message.body : JSON.stringify(message.body ?? null),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw retryable(`broker unreachable: ${(err as Error).message}`, err);
      }
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status > 299) throw retryable(`broker answered ${res.status}`);
    },
  };
}
