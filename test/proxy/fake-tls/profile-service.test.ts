// The primary's profile keeper on a bad day: a hostile site, a damaged cache file, a disk it
// cannot write, a site that comes back. The site is injected; everything else is real (files).
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import winston from 'winston';
import { PROFILE_CACHE_FILE, SiteProfiles } from '../../../proxy/src/fake-tls/profile-service.js';
import type { FlightSample } from '../../../proxy/src/fake-tls/server-flight.js';
import type { SiteProfile } from '../../../proxy/src/fake-tls/site-profile.js';

const SAMPLE: FlightSample = {
  version: 0x0303,
  cipherSuite: 0x1301,
  extensions: [
    { type: 0x2b, data: '0304' },
    { type: 0x33, data: `001d0020${'ab'.repeat(32)}` },
  ],
  ccs: 'with-hello',
  records: [20, 3500, 260, 53],
  recordTimes: [0, 0, 1, 1],
  firstByteMs: 2,
};

function logger(lines: string[]): winston.Logger {
  return winston.createLogger({
    level: 'debug',
    transports: [
      new winston.transports.Console({
        format: winston.format.printf((i) => {
          lines.push(`${i.level} ${String(i.message)}`);
          return '';
        }),
        silent: false,
        log: undefined,
      }),
    ],
  });
}

describe('site profiles on a bad day', () => {
  let dir: string;
  let lines: string[];
  let site: 'up' | 'down' | 'hostile';
  const start = (dataDir = dir, onChange: (p: readonly SiteProfile[]) => void = () => {}) =>
    SiteProfiles.start({
      domains: ['example.com'],
      target: () => ({ host: '127.0.0.1', port: 9 }),
      dataDir,
      mode: 'auto',
      refreshMs: 3_600_000,
      samplesPerKind: 2,
      log: logger(lines),
      onChange,
      probeSite: async () => {
        if (site === 'down') throw new Error('connect ECONNREFUSED 127.0.0.1:9');
        if (site === 'hostile') return { ...SAMPLE, extensions: [{ type: 0xff, data: '00'.repeat(60_000) }] };
        return SAMPLE;
      },
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mtkube-profiles-'));
    lines = [];
    site = 'up';
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a measured profile in a file only the proxy can read, and tells the workers', async () => {
    const seen: (readonly SiteProfile[])[] = [];
    const s = await start(dir, (p) => seen.push(p));
    s.stop();
    expect(s.list()[0]).to.include({ source: 'measured', domain: 'example.com', target: '127.0.0.1:9' });
    expect(seen).to.have.length(1);
    const path = join(dir, PROFILE_CACHE_FILE);
    expect(statSync(path).mode & 0o777).to.equal(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8')).profiles[0].shapes.modern.flightBytes).to.deep.equal({
      min: 3853,
      max: 3853,
    });
  });

  it('does not copy a hostile site that sends a huge ServerHello: fallback, and a warning', async () => {
    site = 'hostile';
    const s = await start();
    s.stop();
    expect(s.list()[0]!.source).to.equal('fallback');
    expect(lines.some((l) => l.startsWith('warn') && l.includes('fallback shape'))).to.equal(true);
  });

  it('ignores a damaged cache file, says so, and measures afresh', async () => {
    writeFileSync(join(dir, PROFILE_CACHE_FILE), '{"version":1,"profiles":[{"domain":"example.com"');
    const s = await start();
    s.stop();
    expect(lines.some((l) => l.includes('cache unreadable'))).to.equal(true);
    expect(s.list()[0]!.source).to.equal('measured');
  });

  it('refuses a cache entry whose shape is malformed, and one measured at another target', async () => {
    const good = await start();
    good.stop();
    const path = join(dir, PROFILE_CACHE_FILE);
    const cached = JSON.parse(readFileSync(path, 'utf8'));
    site = 'down';
    writeFileSync(
      path,
      JSON.stringify({ version: 1, profiles: [{ ...cached.profiles[0], target: 'elsewhere:443' }] }),
    );
    const other = await start();
    other.stop();
    expect(other.list()[0]!.source).to.equal('fallback');
    cached.profiles[0].shapes.modern.extensions = 'not a list';
    writeFileSync(path, JSON.stringify(cached));
    const broken = await start();
    broken.stop();
    expect(broken.list()[0]!.source).to.equal('fallback');
  });

  it('keeps the profile in memory when the disk refuses the cache, with a warning', async () => {
    // A data directory that cannot be made (its parent is a file): as good as a full disk, even as root.
    writeFileSync(join(dir, 'file'), '');
    const s = await start(join(dir, 'file', 'sub'));
    s.stop();
    expect(s.list()[0]!.source).to.equal('measured');
    expect(lines.some((l) => l.includes('cache not saved'))).to.equal(true);
  });

  it('does not hold the start for a slow site; the late measurement still reaches the workers', async () => {
    const seen: (readonly SiteProfile[])[] = [];
    const began = Date.now();
    const s = await SiteProfiles.start({
      domains: ['example.com'],
      target: () => ({ host: '127.0.0.1', port: 9 }),
      dataDir: dir,
      mode: 'auto',
      refreshMs: 3_600_000,
      samplesPerKind: 1,
      firstWaitMs: 50,
      log: logger(lines),
      onChange: (p) => seen.push(p),
      probeSite: () => new Promise((r) => setTimeout(() => r(SAMPLE), 400)),
    });
    expect(Date.now() - began).to.be.below(300);
    expect(s.list()[0]!.source).to.equal('fallback');
    await new Promise((r) => setTimeout(r, 600));
    s.stop();
    expect(seen.at(-1)?.[0]?.source).to.equal('measured');
  });

  it('keeps the last good profile while the site is down, and takes the new one when it is back', async () => {
    const s = await start();
    const first = s.list()[0]!.measuredAt;
    site = 'down';
    await s.refresh();
    expect(s.list()[0]).to.include({ source: 'measured', measuredAt: first });
    expect(s.list()[0]!.lastError).to.contain('ECONNREFUSED');
    expect(s.failures).to.equal(1);
    site = 'up';
    await new Promise((r) => setTimeout(r, 5));
    await s.refresh();
    s.stop();
    expect(s.list()[0]!.measuredAt).to.be.greaterThan(first!);
    expect(s.list()[0]!.lastError).to.equal(undefined);
  });
});
