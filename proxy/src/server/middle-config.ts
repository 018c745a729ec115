// The primary's side of middle mode: Telegram's proxy secret and config, fetched once for all
// workers, refreshed in the background, with every result counted and logged. Workers get each new
// snapshot over IPC and switch new clients to it; open connections are not touched.
import type { Config } from '../config/config.js';
import type { Logger } from '../telemetry/logger.js';
import type { ProxyConfigInfo } from '../telemetry/official-stats.js';
import {
  configToWire,
  type LoadResult,
  type TelegramConfigSnapshot,
  TelegramConfigSource,
  type WireProxyConfig,
} from '../upstream/telegram-config.js';

export class MiddleConfig {
  readonly #source: TelegramConfigSource;
  #snapshot: TelegramConfigSnapshot | undefined;
  /** Refresh results by outcome, for mtproxy_config_refreshes_total. */
  readonly refreshes: Record<string, number> = {};

  private constructor(
    config: Config,
    log: Logger,
    onChange: (secretHex: string, wire: WireProxyConfig) => void,
  ) {
    this.#source = new TelegramConfigSource({
      secretSource: config.proxySecretUrl,
      configSource: config.proxyConfigUrl,
      refreshIntervalMs: config.configRefreshMs,
      cacheDir: config.dataDir,
      listener: {
        result: (r) => this.#result(r, log),
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
          });
          if (!first) onChange(snapshot.secret.toString('hex'), configToWire(snapshot.config));
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
    mc.#snapshot = await mc.#source.start();
    return mc;
  }

  get snapshot(): TelegramConfigSnapshot {
    return this.#snapshot!;
  }

  wire(): { secretHex: string; config: WireProxyConfig } {
    return { secretHex: this.snapshot.secret.toString('hex'), config: configToWire(this.snapshot.config) };
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
    const all = [...this.snapshot.config.targets.values()].flat().map((t) => `${t.host}:${t.port}`);
    return new Set(all).size;
  }

  ageSeconds(now = Date.now()): number {
    return Math.max(0, now / 1000 - this.snapshot.configInfo.loadedAt);
  }

  stop(): void {
    this.#source.stop();
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
