// The replay cache and admission as a flooder meets them (issue 13, items 1 and 4): nothing young
// is ever forgotten, the cache is kept on disk, and no answer means no.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { createLogger } from '../../../proxy/src/log/logger.js';
import { REPLAY_FILE, ReplayFile } from '../../../proxy/src/replay/replay-file.js';
import { GENERATIONS, ReplayWindow } from '../../../proxy/src/replay/replay-window.js';
import { SharedReplayGuard } from '../../../proxy/src/replay/shared-replay.js';
import { SharedUsers } from '../../../proxy/src/users/shared-users.js';
import { UNIQUE_IP_TRACK_CAP, UserRegistry } from '../../../proxy/src/users/user-registry.js';
import { parseUsersFile } from '../../../proxy/src/users/users-file.js';

const A = '0123456789abcdef0123456789abcdef';
// Silent: some tests cap this process's file size (a full disk), and a log line written then to a
// stdout that is a file (as under CI) would hit the cap too.
const log = createLogger('error');
log.silent = true;
const HOUR = 3_600_000;

describe('replay window: every authenticated handshake of the window, exactly', () => {
  it('remembers a handshake for the whole window and forgets it within a generation after', () => {
    let now = 0;
    const w = new ReplayWindow({ capacity: 1000, windowMs: 48 * HOUR, now: () => now });
    const key = randomBytes(16);
    expect(w.check(key)).to.equal('fresh');
    now = 48 * HOUR - 1;
    expect(w.check(key)).to.equal('replay');
    now = 48 * HOUR + (48 * HOUR) / GENERATIONS + 1;
    expect(w.check(key)).to.equal('fresh');
  });

  it('a full cache refuses new handshakes instead of forgetting a young one', () => {
    let now = 0;
    const w = new ReplayWindow({ capacity: 4, windowMs: HOUR, now: () => now });
    const keys = Array.from({ length: 4 }, () => randomBytes(16));
    for (const k of keys) expect(w.check(k)).to.equal('fresh');
    expect(w.check(randomBytes(16)), 'no room: fail closed').to.equal('full');
    for (const k of keys) expect(w.check(k), 'all four still remembered').to.equal('replay');
    now = 2 * HOUR;
    expect(w.check(randomBytes(16)), 'room again once they expired').to.equal('fresh');
  });

  it('holds a million handshakes in at most 32 bytes each and reports the oldest age', () => {
    let now = 1_000;
    const w = new ReplayWindow({ capacity: 1 << 20, windowMs: 48 * HOUR, now: () => now });
    const first = randomBytes(16);
    w.check(first);
    for (let i = 1; i < 1 << 20; i++) {
      if (i % 1000 === 0) now += 100;
      w.check(randomBytes(8));
    }
    expect(w.size).to.be.within((1 << 20) - 5, 1 << 20);
    expect(w.bytes / w.size).to.be.at.most(32);
    expect(w.check(first)).to.equal('replay');
    expect(w.oldestAgeMs()).to.equal(now - 1_000);
  });
});

/** Files this process writes may grow to `bytes` at most (a full disk); returns the undo. */
function limitFileSize(bytes: number): () => void {
  const pid = String(process.pid);
  const before = execFileSync('prlimit', ['--pid', pid, '--fsize', '--output=SOFT', '--noheadings'])
    .toString()
    .trim();
  execFileSync('prlimit', ['--pid', pid, `--fsize=${bytes}:`]);
  return () => execFileSync('prlimit', ['--pid', pid, `--fsize=${before}:`]);
}

describe('replay file: the cache outlives a restart', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mtkube-replay-unit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a handshake remembered before a restart is a replay after it; the file becomes 0600', async () => {
    writeFileSync(join(dir, REPLAY_FILE), 'left by someone else', { mode: 0o644 });
    chmodSync(join(dir, REPLAY_FILE), 0o644);
    const before = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    const file = await ReplayFile.open(dir, before, log);
    const key = randomBytes(16);
    expect(before.check(key)).to.equal('fresh');
    file.append(key.readUInt32LE(0), key.readUInt32LE(4), Date.now());
    await file.close();
    expect(statSync(join(dir, REPLAY_FILE)).mode & 0o777).to.equal(0o600);
    const after = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    await (await ReplayFile.open(dir, after, log)).close();
    expect(after.check(key)).to.equal('replay');
  });

  it('a DATA_DIR that cannot be written leaves the cache working in memory, and says so', async () => {
    const lines: string[] = [];
    const capture = createLogger('error');
    capture.on('data', (info: { message: string }) => lines.push(info.message));
    const w = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    const file = await ReplayFile.open('/dev/null/not-a-directory', w, capture);
    const key = randomBytes(16);
    expect(w.check(key)).to.equal('fresh');
    file.append(key.readUInt32LE(0), key.readUInt32LE(4), Date.now());
    await file.close();
    expect(w.check(key)).to.equal('replay');
    expect(lines.some((l) => l.includes('cannot save the replay cache'))).to.equal(true);
  });

  it('a torn last record (a crash mid-write) loses only that record', async () => {
    const w = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    const file = await ReplayFile.open(dir, w, log);
    const keys = [randomBytes(8), randomBytes(8)];
    for (const k of keys) {
      w.check(k);
      file.append(k.readUInt32LE(0), k.readUInt32LE(4), Date.now());
    }
    await file.close();
    const bytes = readFileSync(join(dir, REPLAY_FILE));
    writeFileSync(join(dir, REPLAY_FILE), bytes.subarray(0, bytes.length - 5));
    const again = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    await (await ReplayFile.open(dir, again, log)).close();
    expect(again.size).to.equal(1);
  });

  it('a full disk that takes half a record leaves no torn record for later ones to shift', async () => {
    const w = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    const file = await ReplayFile.open(dir, w, log);
    const keys = [randomBytes(8), randomBytes(8), randomBytes(8), randomBytes(8)];
    const remember = (k: Buffer) => {
      w.check(k);
      file.append(k.readUInt32LE(0), k.readUInt32LE(4), Date.now());
    };
    // The disk fills in the middle of the second record (magic 8 bytes, records 12 bytes each):
    // this process may write files of 25 bytes at most, as the kernel says for a full disk.
    const restore = limitFileSize(25);
    try {
      for (const k of keys.slice(0, 3)) remember(k);
      for (let i = 0; i < 60 && file.figures.unsaved === 0; i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      restore();
    }
    expect(file.figures.unsaved, 'the two records the disk did not take').to.equal(2);
    remember(keys[3]!);
    await file.close();
    const again = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    await (await ReplayFile.open(dir, again, log)).close();
    expect(again.size).to.equal(2);
    expect(again.check(keys[0]!)).to.equal('replay');
    expect(again.check(keys[3]!), 'a record written after the disk freed up').to.equal('replay');
  });

  it('a file left torn, that the full disk kept from being rewritten, is appended to on a record boundary', async () => {
    const first = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    const writer = await ReplayFile.open(dir, first, log);
    const keys = [randomBytes(8), randomBytes(8), randomBytes(8)];
    for (const k of keys.slice(0, 2)) {
      first.check(k);
      writer.append(k.readUInt32LE(0), k.readUInt32LE(4), Date.now());
    }
    await writer.close();
    const bytes = readFileSync(join(dir, REPLAY_FILE));
    writeFileSync(join(dir, REPLAY_FILE), bytes.subarray(0, bytes.length - 5));
    const w = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    // The restart's rewrite of the file (magic and one record, 20 bytes) does not fit.
    const restore = limitFileSize(15);
    let file: ReplayFile;
    try {
      file = await ReplayFile.open(dir, w, log);
    } finally {
      restore();
    }
    w.check(keys[2]!);
    file.append(keys[2]!.readUInt32LE(0), keys[2]!.readUInt32LE(4), Date.now());
    await file.close();
    const again = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    await (await ReplayFile.open(dir, again, log)).close();
    expect(again.size).to.equal(2);
    expect(again.check(keys[0]!)).to.equal('replay');
    expect(again.check(keys[2]!), 'the record appended after the torn one').to.equal('replay');
  });

  it('a DATA_DIR with no file yet and a full disk gets our header before any record', async () => {
    const w = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    const restore = limitFileSize(0);
    let file: ReplayFile;
    try {
      file = await ReplayFile.open(dir, w, log);
    } finally {
      restore();
    }
    const key = randomBytes(8);
    w.check(key);
    file.append(key.readUInt32LE(0), key.readUInt32LE(4), Date.now());
    await file.close();
    const again = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    await (await ReplayFile.open(dir, again, log)).close();
    expect(again.check(key)).to.equal('replay');
  });

  it('a rewrite of the file that fails loses nothing: what was waiting is appended instead', async () => {
    let now = Date.now();
    const w = new ReplayWindow({ capacity: 200_000, windowMs: HOUR, now: () => now });
    const file = await ReplayFile.open(dir, w, log);
    // Enough records, all expired by now, that the next flush rewrites the file.
    for (let i = 0; i < 140_000; i++) {
      w.checkFingerprint(i, 7);
      file.append(i, 7, now);
    }
    const written = (): number => statSync(join(dir, REPLAY_FILE)).size;
    for (let i = 0; i < 60 && written() < 140_000 * 12; i++) await new Promise((r) => setTimeout(r, 50));
    expect(written(), 'the records were flushed').to.be.at.least(140_000 * 12);
    now += 2 * HOUR;
    const key = randomBytes(8);
    expect(w.check(key)).to.equal('fresh');
    file.append(key.readUInt32LE(0), key.readUInt32LE(4), now);
    // The rewrite cannot create its temporary file.
    mkdirSync(join(dir, `${REPLAY_FILE}.${process.pid}.tmp`));
    await file.close();
    const again = new ReplayWindow({ capacity: 200_000, windowMs: HOUR, now: () => now });
    rmSync(join(dir, `${REPLAY_FILE}.${process.pid}.tmp`), { recursive: true });
    await (await ReplayFile.open(dir, again, log)).close();
    expect(again.check(key)).to.equal('replay');
    expect(again.size).to.equal(1);
  });

  it('a rewrite that the full disk cuts short leaves no temporary file behind', async () => {
    const w = new ReplayWindow({ capacity: 100, windowMs: HOUR });
    w.check(randomBytes(8));
    const restore = limitFileSize(15);
    try {
      await (await ReplayFile.open(dir, w, log)).close();
    } finally {
      restore();
    }
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });
});

describe('fail closed: no answer from the primary means no', function () {
  this.timeout(10_000);

  it('a replay check the primary never answers is refused (counted)', async () => {
    const guard = new SharedReplayGuard(() => {}, log, 100);
    expect(await guard.check(randomBytes(16))).to.equal('no-answer');
    expect(guard.unanswered).to.equal(1);
  });

  it("a limited user's admission the primary never answers is refused, and a late grant given back", async () => {
    const sent: { type: string; id?: number }[] = [];
    const users = new SharedUsers(
      [{ name: 'alice', secretHex: A, limited: true }],
      (msg) => sent.push(msg),
      log,
      100,
    );
    expect(await users.admit('alice', '198.51.100.7')).to.equal('no-answer');
    users.answer({ type: 'admit-answer', id: sent[0]!.id!, refusal: undefined });
    expect(sent.map((m) => m.type)).to.deep.equal(['admit', 'release']);
    expect(users.unanswered).to.equal(1);
  });

  it('with the default deadline too (the 2 s the primary gets), no answer is a refusal', async () => {
    const users = new SharedUsers([{ name: 'alice', secretHex: A, limited: true }], () => {});
    expect(await users.admit('alice', '198.51.100.7')).to.equal('no-answer');
  });
});

describe('admission: constant work per connection, IPv6 per /64', () => {
  const file = () =>
    parseUsersFile(`
users:
  alice: { secret: ${A}, maxUniqueIps: 2, uniqueIpWindowSeconds: 60 }
  bob: { secret: 0123456789abcdef0123456789abcde0, maxConnections: 1000000 }
`);

  it('a flood of addresses from one /64 counts as one address', () => {
    const reg = new UserRegistry(file());
    for (let i = 1; i <= 10_000; i++) {
      expect(reg.admit('alice', `2001:db8:1:2::${i.toString(16)}`)).to.equal(undefined);
      reg.release('alice', `2001:db8:1:2::${i.toString(16)}`);
    }
    expect(reg.figures('alice')!.uniqueIps).to.equal(1);
    expect(reg.admit('alice', '2001:db8:1:3::1'), 'another /64 is a second address').to.equal(undefined);
    expect(reg.admit('alice', '2001:db8:1:4::1'), 'a third is over the limit').to.equal('max-unique-ips');
  });

  it('addresses tracked for a user without a unique-IP limit stay under a cap', () => {
    const reg = new UserRegistry(file());
    for (let i = 0; i < 3 * UNIQUE_IP_TRACK_CAP; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      expect(reg.admit('bob', ip)).to.equal(undefined);
      reg.release('bob', ip);
    }
    expect(reg.figures('bob')!.uniqueIps).to.equal(UNIQUE_IP_TRACK_CAP);
    expect(reg.figures('bob')!.connections).to.equal(0);
  });

  it('expired idle addresses are dropped from the front only, as they age', () => {
    let now = 0;
    const reg = new UserRegistry(file(), new Map(), () => now);
    reg.admit('alice', '10.0.0.1');
    reg.release('alice', '10.0.0.1');
    now = 30_000;
    reg.admit('alice', '10.0.0.2');
    reg.release('alice', '10.0.0.2');
    now = 61_000;
    expect(reg.figures('alice')!.uniqueIps).to.equal(1);
    expect(reg.admit('alice', '10.0.0.3')).to.equal(undefined);
    expect(reg.admit('alice', '10.0.0.4')).to.equal('max-unique-ips');
  });
});

describe('quota periods: usage starts again at the period start, in the stated time zone', () => {
  it('names days, Monday weeks and months in the zone, and "all" without a period', async () => {
    const { periodKey } = await import('../../../proxy/src/users/quota-period.js');
    const t = Date.parse('2026-11-30T23:30:00Z'); // Monday 30 November in UTC, Tuesday 1 December in Berlin
    expect(periodKey('none', 'UTC', t)).to.equal('all');
    expect(periodKey('daily', 'UTC', t)).to.equal('2026-11-30');
    expect(periodKey('daily', 'Europe/Berlin', t)).to.equal('2026-12-01');
    expect(periodKey('weekly', 'UTC', t)).to.equal('week-2026-11-30');
    expect(periodKey('weekly', 'Europe/Berlin', t)).to.equal('week-2026-11-30');
    expect(periodKey('weekly', 'UTC', Date.parse('2026-12-06T12:00:00Z'))).to.equal('week-2026-11-30');
    expect(periodKey('monthly', 'UTC', t)).to.equal('2026-11');
    expect(periodKey('monthly', 'Europe/Berlin', t)).to.equal('2026-12');
  });

  it('a monthly quota used up on the last evening is available again at midnight of the 1st', () => {
    let now = Date.parse('2026-01-31T22:59:00Z'); // 23:59 in Berlin
    const users = parseUsersFile(`
users:
  alice: { secret: ${A}, quota: 1000, quotaPeriod: monthly }
`);
    const reg = new UserRegistry(users, new Map(), () => now, { timeZone: 'Europe/Berlin' });
    expect(reg.addBytes('alice', 1000)).to.equal(true);
    expect(reg.admit('alice', '10.0.0.1')).to.equal('quota');
    now = Date.parse('2026-01-31T23:00:00Z'); // 00:00 on 1 February in Berlin
    expect(reg.admit('alice', '10.0.0.1')).to.equal(undefined);
    expect(reg.figures('alice')!.bytesUsed).to.equal(0);
  });

  it('the users file refuses an unknown period, naming it', () => {
    expect(() => parseUsersFile(`users:\n  alice: { secret: ${A}, quotaPeriod: hourly }\n`)).to.throw(
      /quotaPeriod.*none, daily, weekly, monthly/,
    );
  });
});

describe('STATE_URL settings', () => {
  const parse = async (env: Record<string, string>) => {
    const { parseStateSettings } = await import('../../../proxy/src/config/state-settings.js');
    return parseStateSettings((n) => env[n], 'pod-1');
  };

  it('takes redis:// and rediss:// and shows the URL without its credentials', async () => {
    const s = await parse({ STATE_URL: 'rediss://user:s3cret@store.example:6380/2' });
    expect(s!.shownUrl).to.equal('rediss://store.example:6380/2');
    expect(s!.replayFallback).to.equal('local');
    expect(s!.limitsFallback).to.equal('share');
    expect(await parse({})).to.equal(undefined);
  });

  it('refuses another scheme and a bad database, naming the variable and never the password', async () => {
    for (const url of ['http://u:s3cret@host/0', 'redis://u:s3cret@host/x']) {
      const err = await parse({ STATE_URL: url }).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).message).to.match(/^STATE_URL: /);
      expect((err as Error).message).to.not.contain('s3cret');
    }
  });
});
