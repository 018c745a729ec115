import { expect } from 'chai';
import { EventRecorder } from '../../../operator/src/controller/events.js';
import type { KubeClient } from '../../../operator/src/controller/kube-client.js';
import { preflight } from '../../../operator/src/preflight.js';
import { FakeClock } from '../support/fake-clock.js';

/** Records the calls the code under test makes; answers what the test says. */
function fakeClient(answers: { servesApi?: boolean; allowed?: (resource: string, verb: string) => boolean }) {
  const calls: { method: string; body: unknown }[] = [];
  const client = {
    async servesApi() {
      return answers.servesApi ?? true;
    },
    async request(
      method: string,
      _path: string,
      extra: { body?: { spec: { resourceAttributes: Record<string, string> } } },
    ) {
      const attrs = extra.body!.spec.resourceAttributes;
      calls.push({ method, body: attrs });
      return { status: { allowed: answers.allowed?.(attrs.resource!, attrs.verb!) ?? true } };
    },
    async create(obj: unknown) {
      calls.push({ method: 'create', body: obj });
      return obj;
    },
    async mergePatch(_ref: unknown, patch: unknown) {
      calls.push({ method: 'patch', body: patch });
      return {};
    },
  };
  return { client: client as unknown as KubeClient, calls };
}

describe('preflight', () => {
  it('says how to install a missing CRD', async () => {
    const { client } = fakeClient({ servesApi: false });
    const result = await preflight(client, [], 'ops');
    expect(result.ok).to.equal(false);
    expect(result.problems[0]).to.include('kubectl apply -f crds/mtkube.dev_mtproxies.yaml');
  });

  it('lists every missing permission in one message', async () => {
    const { client } = fakeClient({
      allowed: (resource, verb) => !(resource === 'secrets' && verb === 'create'),
    });
    const result = await preflight(client, ['a', 'b'], 'ops');
    expect(result.problems).to.have.length(1);
    expect(result.problems[0]).to.include('create secrets in a, create secrets in b');
  });

  it('passes when everything is in place', async () => {
    const { client } = fakeClient({});
    expect(await preflight(client, [], 'ops')).to.deep.equal({ ok: true, problems: [] });
  });
});

describe('event recorder', () => {
  const mtp = {
    apiVersion: 'mtkube.dev/v1alpha1',
    kind: 'MTProxy',
    metadata: { name: 'tg', namespace: 'ns', uid: 'u1' },
  };

  it('creates an Event, then counts repeats on it instead of creating more', async () => {
    const { client, calls } = fakeClient({});
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const rec = new EventRecorder(client, { component: 'mtkube-operator', instance: 'x', clock });
    await rec.record(mtp, 'Normal', 'DailyRestart', 'Rolling restart');
    clock.advance(60_000);
    await rec.record(mtp, 'Normal', 'DailyRestart', 'Rolling restart');
    expect(calls.map((c) => c.method)).to.deep.equal(['create', 'patch']);
    expect(calls[0]!.body).to.deep.include({ reason: 'DailyRestart', type: 'Normal', count: 1 });
    expect(calls[1]!.body).to.deep.equal({ count: 2, lastTimestamp: '2026-01-01T00:01:00Z' });
    clock.advance(11 * 60_000);
    await rec.record(mtp, 'Normal', 'DailyRestart', 'Rolling restart');
    expect(calls.at(-1)!.method, 'a new Event after ten quiet minutes').to.equal('create');
  });

  it('never writes a secret into an Event', async () => {
    const { client, calls } = fakeClient({});
    const rec = new EventRecorder(client, { component: 'c', instance: 'x', clock: new FakeClock(0) });
    await rec.record(mtp, 'Warning', 'Oops', 'value 00112233445566778899aabbccddeeff rejected');
    expect(JSON.stringify(calls)).to.not.include('00112233445566778899aabbccddeeff');
  });
});
