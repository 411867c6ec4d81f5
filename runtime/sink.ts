import { HTTP, type CloudEvent } from 'cloudevents';
import { invalid, retryable } from './errors.ts';
import type { EventSink } from './step.ts';

/** POSTs binary-mode CloudEvents to K_SINK. Anything but 2xx is retryable: the caller answers 503. */
export function httpSink(sinkUrl: string | undefined, fetchImpl: typeof fetch = fetch, timeoutMs = 10_000): EventSink {
  return {
    async send(event: CloudEvent<unknown>): Promise<void> {
      if (!sinkUrl) throw invalid('K_SINK is not set: this function cannot emit events (missing SinkBinding)');
      const message = HTTP.binary(event);
      let res: Response;
      try {
        res = await fetchImpl(sinkUrl, {
          method: 'POST',
          headers: message.headers as Record<string, string>,
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
