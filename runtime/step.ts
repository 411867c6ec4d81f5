import type { CloudEvent } from 'cloudevents';
import type { Catalog } from './catalog.ts';
import type { KubePort } from './kube.ts';
import type { Logger } from './logger.ts';
import type { Settings } from './settings.ts';

// The shape every function folder follows: index.ts exports a StepDefinition whose handle parses the input,
// reads state through the ports, calls a pure decide, runs the effects and returns a reply.

export interface HttpRequest {
  method: string;
  path: string;
  headers: Readonly<Record<string, string | undefined>>;
  rawBody: Buffer;
}

export type StepInput =
  | { kind: 'event'; event: CloudEvent<unknown> }
  | { kind: 'http'; request: HttpRequest };

export type StepReply =
  | { kind: 'event'; event: CloudEvent<unknown> }
  | { kind: 'empty' }
  | { kind: 'json'; status: 200 | 202; body: unknown };

/** Sends CloudEvents to K_SINK (the broker); failures are retryable errors. */
export interface EventSink {
  send(event: CloudEvent<unknown>): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export interface StepDeps {
  settings: Settings;
  logger: Logger;
  catalog: Catalog;
  kube: KubePort;
  sink: EventSink;
  clock: Clock;
  /** Outbound HTTP for predictors, Slack and the like; injectable for tests. */
  fetch: typeof fetch;
}

export interface StepDefinition {
  readonly name: string;
  /** `cloudevent`: faas-js-runtime parses a CloudEvent (400 when it is not one; runtime/faas.ts); `http`: raw webhook bodies. */
  readonly input: 'cloudevent' | 'http';
  handle(input: StepInput, deps: StepDeps): Promise<StepReply>;
}

export const empty: StepReply = { kind: 'empty' };
export const reply = (event: CloudEvent<unknown>): StepReply => ({ kind: 'event', event });
