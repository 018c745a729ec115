// Start-up of the primary: settings -> secrets and addresses -> banner -> workers -> signals.
import { type Config, parseConfig, readRawSettings } from '../config/config.js';
import { ConfigError } from '../config/errors.js';
import { detectExternalIp, detectInternalIp } from '../config/ip-detect.js';
import { loadOrCreateSecrets } from '../config/secret-store.js';
import { helpText } from '../config/settings.js';
import { formatBanner } from '../telemetry/banner.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { workerSettings } from './ipc.js';
import { runPrimary } from './primary.js';

/** Returns an exit code to exit with now, or undefined while the proxy keeps running. */
export async function startProxy(
  env: NodeJS.ProcessEnv,
  argv: readonly string[],
): Promise<number | undefined> {
  let config: Config;
  try {
    const raw = readRawSettings(env, argv);
    if (raw.has('HELP')) {
      process.stdout.write(helpText());
      return 0;
    }
    config = parseConfig(raw, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mtproxy: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel, { component: 'primary' });
  let secrets: readonly Buffer[];
  try {
    secrets = await settleSecrets(config, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mtproxy: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const internalIp = config.internalIp ?? detectInternalIp();
  const externalIp = config.externalIp ?? (await detectExternalIp(config.ipDetectUrls)) ?? internalIp;
  if (config.externalIp === undefined) {
    log.info('addresses detected', { internalIp, externalIp, detectedExternal: externalIp !== internalIp });
  }
  if (config.banner) {
    process.stdout.write(formatBanner({ config, secrets, externalIp }));
  }

  const primary = runPrimary(config, workerSettings(config, secrets), log);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void primary.shutdown(signal).then(() => process.exit(0));
    });
  }
  try {
    await primary.ready;
  } catch (err) {
    process.stderr.write(`mtproxy: ${(err as Error).message}\n`);
    await primary.shutdown('start-failed');
    return 1;
  }
  return undefined;
}

async function settleSecrets(config: Config, log: Logger): Promise<readonly Buffer[]> {
  if (config.secrets !== undefined) return config.secrets.map((s) => s.bytes);
  const stored = await loadOrCreateSecrets(config.dataDir, config.secretCount);
  log.info(stored.origin === 'generated' ? 'secrets generated and saved' : 'secrets loaded', {
    path: stored.path,
    count: stored.secrets.length,
  });
  return stored.secrets.map((s) => s.bytes);
}
