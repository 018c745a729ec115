// The primary's keeper of site profiles: one per fake-TLS domain, measured at start and every
// refresh interval against the mask target (the server a masked prober reaches) with that domain
// in the SNI, cached in DATA_DIR so that a restart while the site is down still answers with the
// site's shape. Workers get every change over IPC. A failed measurement keeps the last good
// profile (or the documented fallback) and says so in a warning, /stats and /metrics.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { FlightSample } from './server-flight.js';
import {
  DEFAULT_PROBE_OPTIONS,
  measureResponse,
  type ProbeOptions,
  type ProbeTarget,
  probeSite,
  type ResponseSample,
} from './site-prober.js';
import {
  type FlightShape,
  fallbackProfile,
  HELLO_KINDS,
  type HelloKind,
  MAX_COPIED_EXTENSION_BYTES,
  type SiteProfile,
  shapeOf,
} from './site-profile.js';

export const PROFILE_CACHE_FILE = 'tls-profiles.json';
const CACHE_VERSION = 1;
const FIRST_WAIT_MS = 3000;

export type ProfileMode = 'auto' | 'off';

export interface ProfileServiceOptions {
  readonly domains: readonly string[];
  /** Where a domain is measured: the mask target, else the domain itself on 443. */
  readonly target: (domain: string) => { readonly host: string; readonly port: number };
  readonly dataDir: string;
  readonly mode: ProfileMode;
  readonly refreshMs: number;
  /** Connections per hello shape per measurement. */
  readonly samplesPerKind: number;
  /** How long start() waits for the first measurement (default 3 s). */
  readonly firstWaitMs?: number;
  readonly probe?: ProbeOptions;
  readonly log: Logger;
  readonly onChange: (profiles: readonly SiteProfile[]) => void;
  /** Injected for tests; measureResponse by default. */
  readonly measureResponse?: (target: ProbeTarget, options: ProbeOptions) => Promise<ResponseSample>;
  /** Injected for tests; probeSite by default. */
  readonly probeSite?: (target: ProbeTarget, kind: HelloKind, options: ProbeOptions) => Promise<FlightSample>;
}

interface CacheFile {
  readonly version: number;
  readonly profiles: readonly SiteProfile[];
}

const isRange = (r: unknown): boolean =>
  typeof r === 'object' &&
  r !== null &&
  Number.isInteger((r as { min: unknown }).min) &&
  Number.isInteger((r as { max: unknown }).max);

/** A shape read back from the cache file is used only if every field has the type it must have. */
function isShape(value: unknown): value is FlightShape {
  const s = value as FlightShape;
  return (
    typeof s === 'object' &&
    s !== null &&
    Number.isInteger(s.cipherSuite) &&
    Array.isArray(s.extensions) &&
    s.extensions.every(
      (e) => Number.isInteger(e?.type) && typeof e.data === 'string' && /^[0-9a-f]*$/.test(e.data),
    ) &&
    s.extensions.reduce((n, e) => n + 4 + e.data.length / 2, 0) <= MAX_COPIED_EXTENSION_BYTES &&
    ['with-hello', 'separate', 'none'].includes(s.ccs) &&
    isRange(s.records) &&
    isRange(s.flightBytes) &&
    Array.isArray(s.gapsMs)
  );
}

function isProfile(value: unknown): value is SiteProfile {
  const p = value as SiteProfile;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.domain === 'string' &&
    typeof p.target === 'string' &&
    typeof p.measuredAt === 'number' &&
    typeof p.shapes === 'object' &&
    p.shapes !== null &&
    Object.entries(p.shapes).every(([k, s]) => HELLO_KINDS.includes(k as HelloKind) && isShape(s)) &&
    (p.response === undefined ||
      (Array.isArray(p.response.records) &&
        Array.isArray(p.response.gapsMs) &&
        p.response.gapsMs.every((g) => Number.isFinite(g) && g >= 0)))
  );
}

export class SiteProfiles {
  readonly #opts: ProfileServiceOptions;
  readonly #profiles = new Map<string, SiteProfile>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #measurements = 0;
  #failures = 0;

  private constructor(opts: ProfileServiceOptions) {
    this.#opts = opts;
  }

  /**
   * Loads the cache, and in `auto` mode measures every domain, waiting at most `firstWaitMs` for
   * it: a site that does not answer must not hold the proxy's start. A measurement that ends later
   * reaches the workers through onChange.
   */
  static async start(opts: ProfileServiceOptions): Promise<SiteProfiles> {
    const service = new SiteProfiles(opts);
    for (const domain of opts.domains) {
      service.#profiles.set(domain, fallbackProfile(domain, service.#targetText(domain)));
    }
    if (opts.mode === 'off') return service;
    await service.#loadCache();
    let waited: NodeJS.Timeout | undefined;
    const first = service.refresh().finally(() => service.#schedule());
    await Promise.race([
      first,
      new Promise((r) => (waited = setTimeout(r, opts.firstWaitMs ?? FIRST_WAIT_MS))),
    ]);
    clearTimeout(waited);
    return service;
  }

  list(): readonly SiteProfile[] {
    return this.#opts.domains.map((d) => this.#profiles.get(d)!);
  }

  get measurements(): number {
    return this.#measurements;
  }

  get failures(): number {
    return this.#failures;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Measures every domain now (one after the other, so the site sees a handful of connections). */
  async refresh(): Promise<void> {
    let changed = false;
    for (const domain of this.#opts.domains) {
      if (this.#stopped) return;
      changed = (await this.#measure(domain)) || changed;
    }
    if (changed) {
      this.#opts.onChange(this.list());
      await this.#saveCache();
    }
  }

  #targetText(domain: string): string {
    const t = this.#opts.target(domain);
    return `${t.host}:${t.port}`;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.refresh().finally(() => this.#schedule());
    }, this.#opts.refreshMs);
    this.#timer.unref();
  }

  async #measure(domain: string): Promise<boolean> {
    const opts = this.#opts;
    const target = { ...opts.target(domain), domain };
    const probe = opts.probeSite ?? probeSite;
    const shapes: { [K in HelloKind]?: ReturnType<typeof shapeOf> } = {};
    let lastError: string | undefined;
    // The few connections of one domain go out together, as a browser opens its first ones.
    const attempts = HELLO_KINDS.flatMap((kind) =>
      Array.from({ length: opts.samplesPerKind }, () =>
        probe(target, kind, opts.probe ?? DEFAULT_PROBE_OPTIONS).then(
          (sample) => ({ kind, sample }),
          (err: Error) => {
            lastError = err.message;
            return undefined;
          },
        ),
      ),
    );
    // One full handshake and page request, for the site's pacing after the handshake.
    const response = (opts.measureResponse ?? measureResponse)(
      target,
      opts.probe ?? DEFAULT_PROBE_OPTIONS,
    ).then(
      (r) => (r.records.length > 0 ? r : undefined),
      () => undefined,
    );
    const results = await Promise.all(attempts);
    const page = await response;
    for (const kind of HELLO_KINDS) {
      const samples = results.flatMap((r) => (r !== undefined && r.kind === kind ? [r.sample] : []));
      const shape = shapeOf(samples);
      if (shape !== undefined) shapes[kind] = shape;
      else lastError ??= 'the site sent no encrypted flight (HelloRetryRequest or TLS 1.2 only)';
    }
    this.#measurements++;
    const old = this.#profiles.get(domain)!;
    const targetText = `${target.host}:${target.port}`;
    if (shapes.classic === undefined && shapes.modern === undefined) {
      this.#failures++;
      this.#profiles.set(domain, { ...old, lastError });
      opts.log.warn(
        old.source === 'fallback'
          ? 'fake-TLS site profile: the site could not be measured; answering with the fallback shape'
          : 'fake-TLS site profile: the site could not be measured; answering with the last good profile',
        {
          domain,
          target: targetText,
          error: lastError,
          profileAgeSeconds:
            old.measuredAt === undefined ? undefined : Math.round((Date.now() - old.measuredAt) / 1000),
        },
      );
      return lastError !== old.lastError;
    }
    const profile: SiteProfile = {
      domain,
      target: targetText,
      source: 'measured',
      measuredAt: Date.now(),
      shapes: Object.fromEntries(Object.entries(shapes).filter(([, s]) => s !== undefined)),
      ...(lastError === undefined ? {} : { lastError }),
      ...(page === undefined
        ? {}
        : { response: { records: page.records.slice(0, 64), gapsMs: page.gapsMs } }),
    };
    this.#profiles.set(domain, profile);
    opts.log.info('fake-TLS site profile measured', {
      domain,
      target: targetText,
      flightBytes: Object.entries(profile.shapes)
        .map(([k, s]) => `${k}:${s!.flightBytes.min}-${s!.flightBytes.max}`)
        .join(' '),
      extensions: (profile.shapes.modern ?? profile.shapes.classic)!.extensions.map((e) => e.type).join(','),
    });
    return true;
  }

  async #loadCache(): Promise<void> {
    const path = join(this.#opts.dataDir, PROFILE_CACHE_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return; // no cache yet
    }
    try {
      const parsed = JSON.parse(text) as CacheFile;
      if (parsed.version !== CACHE_VERSION || !Array.isArray(parsed.profiles))
        throw new Error('unknown format');
      for (const p of parsed.profiles) {
        if (!isProfile(p) || !this.#profiles.has(p.domain)) continue;
        // A profile measured against another target is another site's shape.
        if (p.target !== this.#targetText(p.domain)) continue;
        this.#profiles.set(p.domain, { ...p, source: 'cache' });
      }
    } catch (err) {
      this.#opts.log.warn('fake-TLS site profile cache unreadable; measuring afresh', {
        path,
        error: (err as Error).message,
      });
    }
  }

  async #saveCache(): Promise<void> {
    const dir = this.#opts.dataDir;
    const path = join(dir, PROFILE_CACHE_FILE);
    const good = this.list().filter((p) => p.measuredAt !== undefined);
    if (good.length === 0) return;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(
        tmp,
        `${JSON.stringify({ version: CACHE_VERSION, profiles: good } satisfies CacheFile)}\n`,
        {
          mode: 0o600,
        },
      );
      await rename(tmp, path);
    } catch (err) {
      // A full or read-only disk costs the cache, not the profile in memory.
      this.#opts.log.warn('fake-TLS site profile cache not saved', { path, error: (err as Error).message });
    }
  }
}
