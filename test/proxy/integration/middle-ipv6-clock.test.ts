// Middle mode's completeness: IPv6 middle proxies (MIDDLE_IPV6 with Telegram's getProxyConfigV6
// list) and the clock check against the Date header of Telegram's config server, reported in
// /stats, /metrics and the log. Everything is on loopback: stand-in middle proxies on 127.0.0.1
// and ::1, and a stand-in config server on 127.0.0.1 whose Date header the test chooses.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ConfigServer } from '../../support/config-server.js';
import { eventually, metrics, stats } from '../../support/http-get.js';
import { Obfs2StreamClient } from '../../support/obfs2-stream-client.js';
import { freePort, type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { StandinMiddleProxy } from '../../support/standin-middle-proxy.js';

const SECRET = '00112233445566778899aabbccddeeff';
const TAG = 'a0b1c2d3e4f5061728394a5b6c7d8e9f';

/** An encrypted-looking packet (non-zero auth_key_id) the stand-in echoes. */
function packet(size: number): Buffer {
  const p = randomBytes(size);
  p[0]! |= 1;
  return p;
}

function logLines(proxy: ProxyProcess): Record<string, unknown>[] {
  return proxy
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function echo(port: number): Promise<void> {
  const client = await Obfs2StreamClient.connect({ port, secret: SECRET, dc: 2 });
  try {
    const p = packet(512);
    client.send(p);
    expect((await client.receive()).equals(p)).to.equal(true);
  } finally {
    await client.close();
  }
}

/** DC_ADDRS sending every DC to a closed port: a proxy that went direct would fail. */
async function deadDcs(): Promise<string> {
  const port = await freePort();
  return [1, 2, 3, 4, 5].map((dc) => `${dc}=127.0.0.1:${port}`).join(',');
}

class Files {
  readonly dir = mkdtempSync(join(tmpdir(), 'mtkube-middle-v6-'));
  write(name: string, content: Buffer | string): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('middle mode: IPv6 middle proxies (MIDDLE_IPV6)', function () {
  this.timeout(60_000);
  const files = new Files();
  const stop: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stop.reverse()) await s().catch(() => {});
    files.remove();
  });

  /** Stand-ins on 127.0.0.1 and ::1 sharing one proxy secret, and a proxy with both lists as files. */
  const startBoth = async (middleIpv6: 'only' | 'on') => {
    const secret = randomBytes(128);
    const v6 = await StandinMiddleProxy.start({ host: '::1', secret });
    const v4 = await StandinMiddleProxy.start({ secret });
    stop.push(
      () => v6.close(),
      () => v4.close(),
    );
    const proxy = await startProxy({
      env: {
        SECRET,
        TAG,
        WORKERS: '1',
        DC_ADDRS: await deadDcs(),
        PROXY_SECRET_URL: files.write(`secret-${middleIpv6}`, secret),
        PROXY_CONFIG_URL: files.write(`v4-${middleIpv6}.conf`, v4.configText()),
        PROXY_CONFIG_V6_URL: files.write(`v6-${middleIpv6}.conf`, v6.configText()),
        MIDDLE_IPV6: middleIpv6,
        CONFIG_REFRESH_INTERVAL: '0',
      },
    });
    stop.push(async () => {
      await proxy.stop();
    });
    return { v4, v6, proxy };
  };
  const readyTargets = (proxy: ProxyProcess, n: number) =>
    eventually(
      async () => ((await stats(proxy)).get('ready_targets') === String(n) ? true : undefined),
      15_000,
    );

  it('only: an IPv6-only host relays through the IPv6 list; the IPv4 list is not dialled', async () => {
    const { v4, v6, proxy } = await startBoth('only');
    await readyTargets(proxy, 1);
    await echo(proxy.port);
    // The IPv6 stand-in listens on ::1 alone: whatever it got came over IPv6.
    expect(v6.requests).to.have.length(1);
    expect(v4.connectionsAccepted).to.equal(0);
    expect((await stats(proxy)).get('active_targets')).to.equal('1');
    // Files carry no Date header: nothing to compare the clock with.
    expect((await stats(proxy)).get('clock_check')).to.equal('unknown');
  });

  it('on: both lists are in the pool and every client still gets its echo', async () => {
    const { v4, v6, proxy } = await startBoth('on');
    await readyTargets(proxy, 2);
    expect(v6.handshakesCompleted).to.be.greaterThan(0);
    expect(v4.handshakesCompleted).to.be.greaterThan(0);
    for (let i = 0; i < 12; i++) await echo(proxy.port);
    expect(v4.requests.length + v6.requests.length).to.equal(12);
  });

  it('off (the default) never reads the IPv6 list', async () => {
    const secret = randomBytes(128);
    const v4 = await StandinMiddleProxy.start({ secret });
    const v6list = await ConfigServer.start('proxy_for 2 [::1]:9;\n');
    stop.push(
      () => v4.close(),
      () => v6list.close(),
    );
    const proxy = await startProxy({
      env: {
        SECRET,
        TAG,
        DC_ADDRS: await deadDcs(),
        PROXY_SECRET_URL: files.write('secret-off', secret),
        PROXY_CONFIG_URL: files.write('v4-off.conf', v4.configText()),
        PROXY_CONFIG_V6_URL: v6list.url,
        CONFIG_REFRESH_INTERVAL: '0',
      },
    });
    stop.push(async () => {
      await proxy.stop();
    });
    await echo(proxy.port);
    expect(v6list.requests).to.equal(0);
  });
});

describe("middle mode: the clock check against Telegram's Date header", function () {
  this.timeout(60_000);
  const files = new Files();
  let middle: StandinMiddleProxy;
  let configServer: ConfigServer;
  const stop: (() => Promise<void>)[] = [];
  /** Telegram's clock as the stand-in config server tells it: ours plus this offset. */
  let offsetSeconds = 0;

  before(async () => {
    middle = await StandinMiddleProxy.start();
    configServer = await ConfigServer.start(middle.configText());
    configServer.dateHeader = () => new Date(Date.now() + offsetSeconds * 1000).toUTCString();
  });
  after(async () => {
    for (const s of stop.reverse()) await s().catch(() => {});
    await middle?.close();
    await configServer?.close();
    files.remove();
  });

  const start = async (extra: Record<string, string>): Promise<ProxyProcess> => {
    const proxy = await startProxy({
      env: {
        SECRET,
        TAG,
        DC_ADDRS: await deadDcs(),
        PROXY_SECRET_URL: files.write(`secret-${randomBytes(4).toString('hex')}`, middle.secret),
        PROXY_CONFIG_URL: configServer.url,
        ...extra,
      },
    });
    stop.push(async () => {
      await proxy.stop();
    });
    return proxy;
  };

  it('a clock 120 s ahead of Telegram is reported as skewed in /stats, /metrics and an error log line; fixed, it is ok again', async () => {
    offsetSeconds = -120;
    const proxy = await start({ CONFIG_REFRESH_INTERVAL: '1' });
    const s = await stats(proxy);
    expect(s.get('clock_check')).to.equal('skewed');
    expect(Number(s.get('clock_skew_seconds'))).to.be.closeTo(119.5, 1.5);
    expect(Number(s.get('clock_checked_at'))).to.be.closeTo(Date.now() / 1000, 5);
    const m = await metrics(proxy);
    expect(m).to.match(/^mtproxy_clock_check\{state="skewed"\} 1$/m);
    const skew = /^mtproxy_clock_skew_seconds ([\d.e+-]+)$/m.exec(m);
    expect(Number(skew?.[1])).to.be.closeTo(119.5, 1.5);
    const error = logLines(proxy).find((l) => String(l.message).includes('clock is off'));
    expect(error?.level).to.equal('error');
    expect(error?.limitSeconds).to.equal(30);

    offsetSeconds = 0;
    await eventually(
      async () => ((await stats(proxy)).get('clock_check') === 'ok' ? true : undefined),
      10_000,
    );
    expect(Math.abs(Number((await stats(proxy)).get('clock_skew_seconds')))).to.be.below(2);
    expect(logLines(proxy).some((l) => String(l.message).includes('agrees with Telegram'))).to.equal(true);
  });

  it('a clock within 30 s is ok, and the relay works', async () => {
    offsetSeconds = 20;
    const proxy = await start({ CONFIG_REFRESH_INTERVAL: '0' });
    const s = await stats(proxy);
    expect(s.get('clock_check')).to.equal('ok');
    expect(Number(s.get('clock_skew_seconds'))).to.be.closeTo(-20.5, 1.5);
    await echo(proxy.port);
  });

  it('an answer without a Date header leaves the clock unknown, and the log says why, once', async () => {
    configServer.dateHeader = () => undefined;
    try {
      const proxy = await start({ CONFIG_REFRESH_INTERVAL: '0' });
      expect((await stats(proxy)).get('clock_check')).to.equal('unknown');
      expect(await metrics(proxy)).to.match(/^mtproxy_clock_check\{state="unknown"\} 1$/m);
      // Without a measurement the skew gauge reads 0: mtproxy_clock_check says whether it means anything.
      expect(await metrics(proxy)).to.match(/^mtproxy_clock_skew_seconds 0$/m);
      const warnings = logLines(proxy).filter((l) => String(l.message).includes('cannot compare'));
      expect(warnings).to.have.length(1);
      expect(warnings[0]!.reason).to.equal('the answer has no Date header');
    } finally {
      configServer.dateHeader = () => new Date(Date.now() + offsetSeconds * 1000).toUTCString();
    }
  });

  it('CLOCK_CHECK=off measures nothing, and /stats, /metrics and the log say it is off', async () => {
    offsetSeconds = -600;
    const proxy = await start({ CLOCK_CHECK: 'off', CONFIG_REFRESH_INTERVAL: '0' });
    const s = await stats(proxy);
    expect(s.get('clock_check')).to.equal('off');
    expect(s.get('clock_skew_seconds')).to.equal('');
    const m = await metrics(proxy);
    expect(m).to.match(/^mtproxy_clock_check\{state="off"\} 1$/m);
    expect(m).to.match(/^mtproxy_clock_skew_seconds 0$/m);
    expect(logLines(proxy).some((l) => String(l.message).startsWith('clock check off'))).to.equal(true);
    expect(logLines(proxy).some((l) => String(l.message).includes('clock is off'))).to.equal(false);
  });
});
