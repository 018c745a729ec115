// The primary's side of middle mode: Telegram's proxy secret and config, fetched once for all
// workers, refreshed in the background, with every result counted and logged. Workers get each new
// snapshot over IPC and switch new clients to it; open connections are not touched.
import type { Config } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { type ClockCheck, checkClock, MIDDLE_PROXY_CLOCK_LIMIT_SECONDS } from './clock.js';
import { configToWire, type WireProxyConfig } from './config-messages.js';
import { middleTargets } from './families.js';
import { type LoadResult, type TelegramConfigSnapshot, TelegramConfigSource } from './telegram-source.js';

/** The loaded config as the official /stats reports it (config_filename, config_loaded_at, ...). */
export interface ProxyConfigInfo {
  readonly source: string;
  readonly loadedAt: number;
  readonly size: number;
  readonly md5: string;
  readonly clusters: number;
}

export class MiddleConfig {
  readonly #source: TelegramConfigSource;
  #snapshot: TelegramConfigSnapshot | undefined;
  /** Refresh results by outcome, for mtproxy_config_refreshes_total. */
  readonly refreshes: Record<string, number> = {};
  /** The last clock check (CLOCK_CHECK=on), undefined before the first HTTP answer. */
  #clock: ClockCheck | undefined;
  readonly #config: Config;

  private constructor(
    config: Config,
    log: Logger,
    onChange: (secretHex: string, wire: WireProxyConfig) => void,
  ) {
    this.#config = config;
    this.#source = new TelegramConfigSource({
      secretSource: config.proxySecretUrl,
      configSource: config.proxyConfigUrl,
      configV6Source: config.middleIpv6 === 'off' ? undefined : config.proxyConfigV6Url,
      refreshIntervalMs: config.configRefreshMs,
      cacheDir: config.dataDir,
      listener: {
        result: (r) => this.#result(r, log),
        date: (observation) => {
          if (config.clockCheck) this.#checkClock(checkClock(observation), log);
        },
        changed: (snapshot) => {
          const first = this.#snapshot === undefined;
          this.#snapshot = snapshot;
          log.info(first ? 'telegram proxy config loaded' : 'telegram proxy config changed', {
            config: snapshot.configInfo.source,
            origin: snapshot.configInfo.origin,
            clusters: snapshot.configInfo.clusters,
            defaultDc: snapshot.config.defaultDc,
            md5: snapshot.configInfo.md5,
            secretOrigin: snapshot.secretInfo.origin,
            ...(snapshot.configV6Info && {
              configV6: snapshot.configV6Info.source,
              originV6: snapshot.configV6Info.origin,
              clustersV6: snapshot.configV6Info.clusters,
            }),
            middleIpv6: config.middleIpv6,
          });
          if (!first) onChange(snapshot.secret.toString('hex'), configToWire(this.#targets()));
        },
      },
    });
  }

  /** Loads the secret and config; throws MiddleModeUnavailableError when there is no secret at all. */
  static async start(
    config: Config,
    log: Logger,
    onChange: (secretHex: string, wire: WireProxyConfig) => void,
  ): Promise<MiddleConfig> {
    const mc = new MiddleConfig(config, log, onChange);
    if (!config.clockCheck) {
      log.info(
        "clock check off (CLOCK_CHECK=off): a clock skewed from Telegram's shows only as failing middle-proxy handshakes",
      );
    }
    mc.#snapshot = await mc.#source.start();
    return mc;
  }

  get snapshot(): TelegramConfigSnapshot {
    return this.#snapshot!;
  }

  wire(): { secretHex: string; config: WireProxyConfig } {
    return { secretHex: this.snapshot.secret.toString('hex'), config: configToWire(this.#targets()) };
  }

  /** The middle proxies in force: the IPv4 list, the IPv6 one, or both (MIDDLE_IPV6). */
  #targets() {
    return middleTargets(this.snapshot.config, this.snapshot.configV6, this.#config.middleIpv6);
  }

  /** The last clock check; `off` when CLOCK_CHECK=off, undefined before the first HTTP answer. */
  clock(): ClockCheck | 'off' | undefined {
    return this.#config.clockCheck ? this.#clock : 'off';
  }

  /** The config_* keys of the official /stats. */
  statsInfo(): ProxyConfigInfo {
    const info = this.snapshot.configInfo;
    return {
      source: info.source,
      loadedAt: info.loadedAt,
      size: info.size,
      md5: info.md5,
      clusters: info.clusters,
    };
  }

  /** Distinct middle-proxy addresses in the config in force. */
  declaredTargets(): number {
    const all = [...this.#targets().targets.values()].flat().map((t) => `${t.host}:${t.port}`);
    return new Set(all).size;
  }

  ageSeconds(now = Date.now()): number {
    return Math.max(0, now / 1000 - this.snapshot.configInfo.loadedAt);
  }

  stop(): void {
    this.#source.stop();
  }

  /** Logs a skewed clock at each check (an error: middle proxies refuse it), and its recovery. */
  #checkClock(check: ClockCheck, log: Logger): void {
    const before = this.#clock?.state;
    this.#clock = check;
    const fields = {
      skewSeconds: check.skewSeconds === undefined ? undefined : Number(check.skewSeconds.toFixed(1)),
      limitSeconds: MIDDLE_PROXY_CLOCK_LIMIT_SECONDS,
      source: check.source,
    };
    if (check.state === 'skewed') {
      log.error(
        "our clock is off Telegram's by more than the middle proxies accept; they will refuse our connections until it is fixed (run NTP)",
        fields,
      );
    } else if (check.state === 'ok' && before === 'skewed') {
      log.info("our clock agrees with Telegram's again", fields);
    } else if (check.state === 'unknown' && before !== 'unknown') {
      log.warn("clock check: cannot compare with Telegram's clock", { ...fields, reason: check.reason });
    }
  }

  #result(r: LoadResult, log: Logger): void {
    const key = `${r.file}/${r.outcome}`;
    this.refreshes[key] = (this.refreshes[key] ?? 0) + 1;
    if (r.outcome !== 'ok') {
      log.error(
        `telegram ${r.file} ${r.outcome === 'rejected' ? 'rejected' : 'fetch failed'}; keeping ${r.kept}`,
        {
          source: r.source,
          error: r.error.message,
        },
      );
    }
  }
}
