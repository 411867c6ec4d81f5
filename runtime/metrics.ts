import { Counter, Histogram, Gauge, Registry } from 'prom-client';

// NOT SERVED: /metrics is faas-js-runtime's own registry, which cannot take these (docs/runtime.md, Metrics).
// Superseded by faas_* and the ModelRun-derived metrics; kept only until the call sites move.
// One registry per process with every metric the functions expose on /metrics. Labels stay low-cardinality:
// model names come from the catalog, never from request input that was not validated against it.
export const registry = new Registry();

export const metrics = {
  events: new Counter({ name: 'mlops_events_total', help: 'Inputs handled, by step, type and HTTP outcome', labelNames: ['step', 'type', 'status'] as const, registers: [registry] }),
  eventDuration: new Histogram({ name: 'mlops_event_duration_seconds', help: 'Time to handle one input', labelNames: ['step'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
  runs: new Counter({ name: 'mlops_runs_total', help: 'Runs that ended, by model, trigger and outcome', labelNames: ['model', 'trigger', 'outcome'] as const, registers: [registry] }),
  stepDuration: new Histogram({ name: 'mlops_step_duration_seconds', help: 'Duration of a run step (training, copy, gate, promote, verify)', labelNames: ['model', 'step', 'outcome'] as const, buckets: [1, 10, 60, 300, 900, 3600, 14400, 43200], registers: [registry] }),
  gateVerdicts: new Counter({ name: 'mlops_gate_verdicts_total', help: 'Gate verdicts by model', labelNames: ['model', 'verdict'] as const, registers: [registry] }),
  notifications: new Counter({ name: 'mlops_notifications_total', help: 'Notifications by channel and outcome', labelNames: ['channel', 'outcome'] as const, registers: [registry] }),
  modelAge: new Gauge({ name: 'mlops_model_age_seconds', help: 'Seconds since the served release was trained', labelNames: ['model'] as const, registers: [registry] }),
};
