import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { resolveSpec } from '../../../operator/src/api/defaults.js';
import type { MTProxy } from '../../../operator/src/api/types.js';
import { redact } from '../../../operator/src/controller/redact.js';
import {
  envSecretNames,
  LINKS_TEXT_KEY,
  planSecrets,
  readSecretSet,
  renderLinks,
  renderLinksSecret,
  renderSecretsSecret,
  secretsChecksum,
} from '../../../operator/src/render/secrets.js';
import { renderStatus, rolloutState, type StatusInputs } from '../../../operator/src/render/status.js';
import { parseSecretParam } from '../../support/secret-param-reader.js';

const mtp: MTProxy = {
  apiVersion: 'mtkube.dev/v1alpha1',
  kind: 'MTProxy',
  metadata: { name: 'tg', namespace: 'proxies', uid: 'uid-1', generation: 3 },
};

/** A deterministic random source: 0x01 x 16, 0x02 x 16, ... */
function counting() {
  let n = 0;
  return (size: number) => Buffer.alloc(size, ++n);
}

describe('secrets', () => {
  it('generates the count asked for, once', () => {
    const first = planSecrets(undefined, 2, counting());
    expect(first.active).to.deep.equal(['01'.repeat(16), '02'.repeat(16)]);
    expect(first.generated).to.equal(2);
    const again = planSecrets(first, 2, counting());
    expect(again.active).to.deep.equal(first.active);
    expect(again.generated).to.equal(0);
  });

  it('keeps existing secrets when the count grows, and retires then restores them when it shrinks', () => {
    const one = planSecrets(undefined, 1, () => Buffer.alloc(16, 0xaa));
    const three = planSecrets(one, 3, counting());
    expect(three.active[0]).to.equal('aa'.repeat(16));
    expect(three.active).to.have.length(3);
    const back = planSecrets(three, 1, counting());
    expect(back.active).to.deep.equal(['aa'.repeat(16)]);
    expect(back.retired).to.deep.equal(three.active.slice(1));
    expect(planSecrets(back, 3, counting()).active).to.deep.equal(three.active);
  });

  it('stores them in a Secret owned by the MTProxy only when the policy is Delete', () => {
    const plan = planSecrets(undefined, 1, randomBytes);
    const kept = renderSecretsSecret(mtp, 'tg-secrets', { env: plan, users: {} }, true);
    expect(kept.metadata).to.not.have.property('ownerReferences');
    expect(kept.metadata.labels).to.include({ 'mtkube.dev/mtproxy': 'tg' });
    expect(
      renderSecretsSecret(mtp, 'tg-secrets', { env: plan, users: {} }, false).metadata.ownerReferences?.[0]
        ?.uid,
    ).to.equal('uid-1');
    expect(readSecretSet(kept.data)?.active).to.deep.equal(plan.active);
  });

  it('changes the pod checksum when a secret or the tag changes, and only then', () => {
    const a = secretsChecksum(['11'.repeat(16)], undefined);
    expect(secretsChecksum(['11'.repeat(16)], undefined)).to.equal(a);
    expect(secretsChecksum(['22'.repeat(16)], undefined)).to.not.equal(a);
    expect(secretsChecksum(['11'.repeat(16)], 'ab'.repeat(16))).to.not.equal(a);
  });
});

describe('links', () => {
  const secrets = ['00112233445566778899aabbccddeeff', 'ffeeddccbbaa99887766554433221100'];

  it('gives every secret in every form the enabled modes accept, as the proxy formats them', () => {
    const s = resolveSpec(
      { modes: ['tls', 'secure', 'classic'], fakeTLS: { domain: 'example.com' } },
      { defaultImage: 'x' },
    );
    const links = renderLinks(s, envSecretNames(secrets), 'proxy.example.com', 443);
    expect(links.map((l) => `${l.secret} ${l.form}`)).to.deep.equal([
      'secret1 ee',
      'secret1 dd',
      'secret1 plain',
      'secret2 ee',
      'secret2 dd',
      'secret2 plain',
    ]);
    const ee = links[0]!;
    expect(ee.tg).to.match(/^tg:\/\/proxy\?server=proxy\.example\.com&port=443&secret=ee/);
    expect(ee.tme).to.match(/^https:\/\/t\.me\/proxy\?server=proxy\.example\.com&port=443&secret=ee/);
    const param = new URL(ee.tme).searchParams.get('secret')!;
    expect(parseSecretParam(param)).to.deep.include({ kind: 'ee', domain: 'example.com' });
    expect(parseSecretParam(param).key.toString('hex')).to.equal(secrets[0]);
  });

  it('offers only dd links by default', () => {
    const links = renderLinks(
      resolveSpec({}, { defaultImage: 'x' }),
      envSecretNames(secrets.slice(0, 1)),
      '203.0.113.7',
      8443,
    );
    expect(links).to.have.length(1);
    expect(links[0]?.tg).to.equal(`tg://proxy?server=203.0.113.7&port=8443&secret=dd${secrets[0]}`);
  });

  it('says in the links Secret when no address is known yet', () => {
    const secret = renderLinksSecret(mtp, 'tg-links', [], undefined);
    expect(Buffer.from(secret.data[LINKS_TEXT_KEY]!, 'base64').toString()).to.match(/No public address yet/);
  });
});

describe('status', () => {
  const base: StatusInputs = {
    now: Date.parse('2026-01-15T10:00:00Z'),
    secrets: {
      status: 'True',
      reason: 'SecretsAvailable',
      message: '1 secret(s)',
      secretName: 'tg-secrets',
      count: 1,
      fingerprint: 'abc',
    },
    externalAddress: { status: 'True', reason: 'Explicit', message: 'x', ip: '203.0.113.7' },
    adTag: undefined,
    deployment: {
      metadata: { generation: 2 },
      spec: { replicas: 2 },
      status: {
        observedGeneration: 2,
        replicas: 2,
        updatedReplicas: 2,
        readyReplicas: 2,
        availableReplicas: 2,
      },
    },
    paused: false,
    mode: 'direct',
    image: 'img',
    selector: 'a=b',
    linksSecretName: 'tg-links',
    endpoints: [{ host: 'proxy.example.com', port: 443 }],
    restart: { lastRestartTime: undefined, nextRestartTime: undefined, restartSchedule: undefined },
  };
  const cond = (st: ReturnType<typeof renderStatus>, type: string) =>
    st.conditions?.find((c) => c.type === type);

  it('is Ready when every pod of the current template is available', () => {
    const st = renderStatus(mtp, base);
    expect(st.observedGeneration).to.equal(3);
    expect(cond(st, 'Ready')).to.include({ status: 'True', reason: 'Available', observedGeneration: 3 });
    expect(cond(st, 'Progressing')).to.include({ status: 'False' });
    expect(cond(st, 'Degraded')).to.include({ status: 'False' });
    expect(cond(st, 'AdTagActive'), 'does not apply without a tag').to.equal(undefined);
    expect(st).to.include({ replicas: 2, readyReplicas: 2, selector: 'a=b', secretName: 'tg-secrets' });
  });

  it('is Progressing, not Ready, during a rollout, and keeps transition times that did not change', () => {
    const rolling = {
      ...base,
      deployment: { ...base.deployment, status: { ...base.deployment!.status, updatedReplicas: 1 } },
    };
    expect(rolloutState(rolling.deployment)).to.equal('progressing');
    const first = renderStatus(mtp, rolling);
    expect(cond(first, 'Progressing')).to.include({ status: 'True', reason: 'RollingOut' });
    expect(cond(first, 'Ready')).to.include({ status: 'False' });
    const later = renderStatus({ ...mtp, status: first }, { ...rolling, now: base.now + 60_000 });
    expect(cond(later, 'Progressing')?.lastTransitionTime).to.equal('2026-01-15T10:00:00Z');
    const done = renderStatus({ ...mtp, status: later }, { ...base, now: base.now + 120_000 });
    expect(cond(done, 'Progressing')?.lastTransitionTime).to.equal('2026-01-15T10:02:00Z');
  });

  it('is Degraded when secrets are missing or the rollout is stuck', () => {
    const missing = renderStatus(mtp, {
      ...base,
      secrets: {
        ...base.secrets,
        status: 'False',
        reason: 'SecretNotFound',
        message: 'Secret x does not exist',
      },
    });
    expect(cond(missing, 'Degraded')).to.include({ status: 'True', reason: 'SecretNotFound' });
    expect(cond(missing, 'Ready')).to.include({ status: 'False' });
    const stuck = renderStatus(mtp, {
      ...base,
      deployment: {
        ...base.deployment,
        status: {
          conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
        },
      },
    });
    expect(cond(stuck, 'Degraded')).to.include({ status: 'True', reason: 'RolloutStuck' });
  });
});

describe('redaction', () => {
  it('removes secrets, links and base64 blobs from any text written out', () => {
    const text =
      'bad value 00112233445566778899aabbccddeeff in tg://proxy?server=x&port=1&secret=ee00112233 ' +
      'data MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY=';
    const out = redact(text);
    expect(out).to.not.match(/00112233445566778899/);
    expect(out).to.not.match(/MDAxMTIy/);
    expect(out).to.include('secret=[redacted]');
    expect(redact('Secret tg-secrets in namespace proxies')).to.equal(
      'Secret tg-secrets in namespace proxies',
    );
  });
});
