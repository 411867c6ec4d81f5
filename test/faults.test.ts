// Issue: with the API injecting 20 % 5xx and 10 % 409 on writes, every request still ends in exactly one run or
// one explicit skip (the broker's retries drive it), with no duplicate NVJs and nothing dead-lettered.
import { CloudEvent } from 'cloudevents';
import { startBroker, type Broker } from '../dev/broker/index.ts';
import { startSubscriber, type Subscriber } from '../dev/broker/testkit.ts';
import { EventTypes } from '../events/index.ts';
import { step as startTraining } from '../functions/start-training/index.ts';
import { Resources } from '../runtime/resources.ts';
import { serveForTest, startTestCluster, type ServedStep, type TestCluster } from './kit.ts';

const MODELS = ['anomaly-detector', 'predictive-analytics'];

describe('start-training under API faults, driven by broker retries', () => {
  let cluster: TestCluster;
  let served: ServedStep;
  let broker: Broker;
  let outcomes: Subscriber;
  let deadLetters: Subscriber;

  beforeAll(async () => {
    cluster = await startTestCluster();
    served = await serveForTest(startTraining, { cluster });
    outcomes = await startSubscriber();
    deadLetters = await startSubscriber();
    const trigger = (name: string, type: string, uri: string) => ({
      apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: { name, namespace: 'mlops' },
      spec: { broker: 'default', filter: { attributes: { type } }, subscriber: { uri } },
    });
    broker = await startBroker({
      namespace: 'mlops',
      triggers: [
        trigger('start', EventTypes.trainingRequested, served.url),
        trigger('started', EventTypes.trainingStarted, outcomes.url),
        trigger('skipped', EventTypes.trainingSkipped, outcomes.url),
      ],
      brokerDelivery: { retry: 30, backoffPolicy: 'linear', backoffDelay: 'PT0.01S', deadLetterSink: { uri: deadLetters.url } },
      resolve: () => undefined,
    });
  });
  afterAll(async () => { await broker.close(); await outcomes.close(); await deadLetters.close(); await served.close(); await cluster.close(); });

  test('40 requests (each delivered three times, two models) → one run per model, every request answered once', async () => {
    cluster.emulator.faults.set([{ verb: 'write', rate: 0.2, status: 500 }, { verb: 'write', rate: 0.1, status: 409 }]);
    cluster.emulator.resetRequests();
    const requests = Array.from({ length: 40 }, (_, i) => new CloudEvent({
      type: EventTypes.trainingRequested, source: '/faults', id: `req-${i}`, datacontenttype: 'application/json',
      data: { model: MODELS[i % 2], trigger: 'manual' },
    }));
    await Promise.all(requests.flatMap((r) => [broker.send(r), broker.send(r), broker.send(r)]));
    await broker.idle(60_000);
    cluster.emulator.faults.clear();

    const injected = cluster.emulator.requests.filter((r) => r.status === 500 || r.status === 409).length;
    expect(injected).toBeGreaterThan(5); // the faults really happened
    expect(deadLetters.received).toHaveLength(0);
    const nvjs = await cluster.kube.listAll(Resources.notebookValidationJob);
    const runs = await cluster.kube.listAll(Resources.modelRun);
    expect(nvjs).toHaveLength(2);
    expect(runs).toHaveLength(2);
    expect(new Set(nvjs.map((n) => n.metadata?.labels?.['mlops.dev/model']))).toEqual(new Set(MODELS));

    // Every request id got an answer (started or skipped); duplicates of one answer share one CloudEvent id.
    const answers = outcomes.received.map((r) => r.event);
    const started = new Set(answers.filter((e) => e.type === EventTypes.trainingStarted).map((e) => e.id));
    expect(started.size).toBe(2);
    const runNames = new Set(runs.map((r) => r.metadata?.name));
    for (const e of answers.filter((a) => a.type === EventTypes.trainingStarted)) expect(runNames.has((e.data as { run: string }).run)).toBe(true);
    const skippedFor = new Set(answers.filter((e) => e.type === EventTypes.trainingSkipped).map((e) => e.id));
    // 38 requests did not win a lock; each is skipped under its own id (one per request, however often delivered).
    expect(skippedFor.size).toBe(38);
  });
});
