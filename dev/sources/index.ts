// Local Knative event sources: PingSource, ApiServerSource (with a real-watch WatchFn) and SinkBinding env.
export { PING_EVENT_TYPE, PingSource, compilePingSource, nextPingTime, pingEvent, startPingSources } from './ping.ts';
export type { PingSink, PingSources, PingSourcesOptions } from './ping.ts';
export {
  ApiServerSource,
  DEFAULT_APISERVER_SOURCE_URI,
  LabelSelector,
  apiServerEvent,
  compileApiServerSource,
  guessPlural,
  labelSelectorString,
  resourceSubject,
  seededRandom,
  shapeWindow,
  startApiServerSources,
} from './apiserver.ts';
export type { ApiServerFaults, ApiServerFaultStats, ApiServerSources, ApiServerSourcesOptions, Pending, WatchEventType, WatchFn } from './apiserver.ts';
export { watchViaKubeconfig } from './kubewatch.ts';
export type { KubeWatchOptions } from './kubewatch.ts';
export { SinkBinding, sinkBindingEnv } from './sinkbinding.ts';
