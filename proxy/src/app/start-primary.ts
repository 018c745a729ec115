// Start-up of the primary: settings -> secrets and addresses -> banner -> workers -> signals. Each
// feature registers its messages on the primary's IPC here; the process core knows none of them.
import { type Config, parseConfig, readRawSettings } from '../config/config.js';
import { ConfigError } from '../config/errors.js';
import { detectExternalIp, detectInternalIp, isPrivateAddress } from '../config/ip-detect.js';
import { loadOrCreateSecrets } from '../config/secret-store.js';
import { helpText } from '../config/settings.js';
import { TLS_PROFILES } from '../fake-tls/profile-messages.js';
import { SiteProfiles } from '../fake-tls/profile-service.js';
import type { SiteProfile } from '../fake-tls/site-profile.js';
import { createLogger, type Logger } from '../log/logger.js';
import { checkMaskTarget, localAddresses, type MaskSettings } from '../masking/mask-relay.js';
import { MIDDLE_CONFIG } from '../middle/config-messages.js';
import { MiddleConfig } from '../middle/config-service.js';
import { MiddleModeUnavailableError } from '../middle/telegram-source.js';
import { fitConnections, softDescriptorLimit } from '../process/fd-limit.js';
import { installLastResort, lastResort } from '../process/last-resort.js';
import { type PrimaryHandle, PrimaryIpc, runPrimary } from '../process/primary.js';
import { ReplayService } from '../replay/replay-cache.js';
import { serveReplayChecks } from '../replay/replay-messages.js';
import { StoreReplay } from '../replay/store-replay.js';
import { StateStore } from '../state/state-store.js';
import { formatBanner } from '../telemetry/banner.js';
import { WorkerTotals } from '../telemetry/worker-totals.js';
import { publishUsers, serveAdmissions } from '../users/admission-service.js';
import { UsersService } from '../users/users-service.js';
import { startTelemetry } from './start-telemetry.js';
import { selfPorts, type WorkerSettings, workerSettings } from './worker-settings.js';

/** Returns an exit code to exit with now, or undefined while the proxy keeps running. */
export async function startProxy(
  env: NodeJS.ProcessEnv,
  argv: readonly string[],
): Promise<number | undefined> {
  const ipc = new PrimaryIpc();
  let primary: PrimaryHandle<WorkerSettings> | undefined;
  let config: Config;
  let log: Logger;
  let users: UsersService;
  // Settings, then what they name (secrets in DATA_DIR, the users file): a mistake in any of
  // them is the user's to fix, named with its variable.
  try {
    const raw = readRawSettings(env, argv);
    if (raw.has('HELP')) {
      process.stdout.write(helpText());
      return 0;
    }
    config = parseConfig(raw, env);
    log = createLogger(config.logLevel, { component: 'primary' });
    users = await UsersService.start({
      envSecrets: await settleSecrets(config, log),
      usersFile: config.usersFile,
      dataDir: config.dataDir,
      timeZone: config.quotaTimeZone,
      log,
      onChange: (wire, revoke) => {
        primary?.updateSettings((s) => ({ ...s, users: wire }));
        publishUsers(ipc, wire, revoke);
      },
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mtproxy: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  ipc.reportDrops(log);
  const internalIp = config.internalIp ?? detectInternalIp();
  const externalIp = config.externalIp ?? (await detectExternalIp(config.ipDetectUrls)) ?? internalIp;
  if (config.externalIp === undefined) {
    log.info('addresses detected', { internalIp, externalIp, detectedExternal: externalIp !== internalIp });
  }
  if (config.banner) {
    process.stdout.write(formatBanner({ config, users: users.users(), externalIp }));
  }

  const selfAddresses = [...new Set([internalIp, externalIp].filter((a): a is string => a !== undefined))];
  const mask = await settleMask(config, selfAddresses, log);
  const profiles = await startSiteProfiles(config, mask, log, (list) => {
    primary?.updateSettings((s) => ({ ...s, tlsProfiles: list }));
    ipc.broadcast(TLS_PROFILES, { type: 'tls-profiles', profiles: list });
  });
  log.info('client modes', {
    modes: [...config.modes].join(','),
    fakeTlsDomains: config.fakeTlsDomains.join(',') || 'none',
    unknownSni: config.fakeTlsDomains.length > 0 ? config.unknownSni : undefined,
    masking: mask ? `${mask.host}:${mask.port}` : 'off',
    proxyProtocol: config.proxyProtocol,
    maxConnectionsPerIp: config.maxConnectionsPerIp || 'no limit',
  });

  let middle: MiddleConfig | undefined;
  if (config.mode === 'middle' || (config.mode === 'auto' && config.tag !== undefined)) {
    try {
      middle = await MiddleConfig.start(config, log, (secretHex, wire) => {
        if (primary === undefined) return;
        primary.updateSettings((s) =>
          s.middle === undefined ? s : { ...s, middle: { ...s.middle, secretHex, config: wire } },
        );
        ipc.broadcast(MIDDLE_CONFIG, { type: 'middle-config', secretHex, config: wire });
      });
    } catch (err) {
      if (!(err instanceof MiddleModeUnavailableError)) throw err;
      if (config.mode === 'middle') {
        process.stderr.write(`mtproxy: MODE=middle: ${err.message}\n`);
        await users.stop();
        return 2;
      }
      log.error('middle mode unavailable; serving in direct mode, so the advertising TAG is NOT shown', {
        error: err.message,
      });
    }
  } else if (config.tag !== undefined) {
    log.warn('TAG is set but MODE=direct: the advertising tag is only shown through middle proxies');
  }
  log.info('upstream', {
    mode: middle ? 'middle' : 'direct',
    tag: config.tag ? 'set' : 'none',
    internalIp,
    externalIp,
    // Behind NAT the middle-end sees the external address, and its keys must use it (§6.5).
    natTranslation:
      middle && internalIp && externalIp && isPrivateAddress(internalIp) && internalIp !== externalIp
        ? `${internalIp} -> ${externalIp}`
        : 'none',
  });
  const middleSettings = middle && {
    ...middle.wire(),
    externalIp: externalIp === internalIp && config.externalIp === undefined ? undefined : externalIp,
    tagHex: config.tag?.toString('hex'),
  };
  // The primary holds the workers, the user table and the endpoints: the same last resort as theirs.
  installLastResort(lastResort({ log: (message, fields) => log.error(message, fields), count: () => {} }));
  const budget = fitConnections(config.maxConnections, softDescriptorLimit());
  if (budget.lowered !== undefined) log.warn(budget.lowered);
  const store = config.state === undefined ? undefined : await StateStore.start(config.state, log);
  if (config.state !== undefined) {
    log.info('shared state', {
      store: config.state.shownUrl,
      replayFallback: config.state.replayFallback,
      limitsFallback: config.state.limitsFallback,
      replicas: config.state.replicas,
    });
  }
  users.useStore(store);
  const replay = await ReplayService.start(
    { capacity: config.replayCacheSize, windowMs: config.replayWindowMs, dataDir: config.dataDir },
    log,
  );
  const totals = new WorkerTotals(ipc);
  serveAdmissions(ipc, users);
  serveReplayChecks(ipc, replay, store && new StoreReplay(store, config.replayWindowMs));
  const settings: WorkerSettings = {
    ...workerSettings(config, users.wire(), {
      mask,
      selfAddresses,
      middle: middleSettings,
      tlsProfiles: profiles?.list(),
    }),
    maxConnections: budget.maxConnections,
  };
  primary = runPrimary(
    {
      workers: config.workers,
      settings,
      drainTimeoutMs: config.drainTimeoutMs,
      listenError: (code, message) => listenError(config, code, message),
      log,
    },
    ipc,
  );
  const running = primary;
  users.watch();
  process.on('SIGHUP', () => void users.reload('SIGHUP'));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void running
        .shutdown(signal)
        .then(() => {
          middle?.stop();
          profiles?.stop();
          return Promise.all([users.stop(), replay.stop()]).then(() => store?.close());
        })
        .then(() => process.exit(0));
    });
  }
  try {
    await running.ready;
    log.info('proxy listening', {
      port: config.port,
      bind: config.bind ?? 'all addresses',
      workers: config.workers,
    });
    await startTelemetry(config, { users, middle, primary: running, totals, replay, store, profiles }, log);
  } catch (err) {
    process.stderr.write(`mtproxy: ${(err as Error).message}\n`);
    await running.shutdown('start-failed');
    await users.stop();
    await replay.stop();
    await store?.close();
    return 1;
  }
  return undefined;
}

/**
 * Checks the mask target once at start (workers check again at every connect, DNS may change):
 * a target that is this proxy is refused loudly and masking turned off; one that does not resolve
 * now is kept, with a warning. Only MASK_HOST is resolved when given, never FAKE_TLS_DOMAIN.
 */
async function settleMask(
  config: Config,
  selfAddresses: readonly string[],
  log: Logger,
): Promise<MaskSettings | undefined> {
  const mask = config.mask;
  if (mask === undefined) return undefined;
  const check = await checkMaskTarget(mask, {
    addresses: localAddresses(selfAddresses),
    ports: new Set(selfPorts(config)),
  });
  if (check.ok) return mask;
  if (check.reason === 'self') {
    log.error(
      'MASK_HOST/MASK_PORT point at this proxy itself; masking is OFF (failed connections are held and closed). Set MASK_HOST to the real site',
      { detail: check.detail },
    );
    return undefined;
  }
  log.warn('mask target does not resolve now; will retry at each masked connection', {
    detail: check.detail,
  });
  return mask;
}

/**
 * Fake-TLS site profiles (FAKE_TLS_PROFILE): measured at the mask target, the server a prober
 * that replays a hello reaches. Without masking nothing is measured (the target would be the real
 * domain, which a proxy behind MASK=off has chosen not to contact) and the fallback shape is used.
 */
async function startSiteProfiles(
  config: Config,
  mask: MaskSettings | undefined,
  log: Logger,
  onChange: (profiles: readonly SiteProfile[]) => void,
): Promise<SiteProfiles | undefined> {
  if (config.fakeTlsDomains.length === 0 || !config.modes.has('tls')) return undefined;
  const measure = config.fakeTlsProfile === 'auto' && mask !== undefined;
  if (config.fakeTlsProfile === 'auto' && mask === undefined) {
    log.warn(
      'FAKE_TLS_PROFILE=auto needs masking (a mask target to measure); answering with the fallback shape',
    );
  }
  return SiteProfiles.start({
    domains: config.fakeTlsDomains,
    target: () => ({ host: mask?.host ?? '', port: mask?.port ?? 443 }),
    dataDir: config.dataDir,
    mode: measure ? 'auto' : 'off',
    refreshMs: config.fakeTlsProfileRefreshMs,
    samplesPerKind: 2,
    log,
    onChange,
  });
}

async function settleSecrets(config: Config, log: Logger): Promise<readonly Buffer[]> {
  if (config.secrets !== undefined) return config.secrets.map((s) => s.bytes);
  // With a users file, secrets saved by an earlier start still count, but none are generated.
  const create = config.usersFile === undefined;
  const stored = await loadOrCreateSecrets(config.dataDir, config.secretCount, undefined, create);
  if (stored.secrets.length === 0) return [];
  log.info(stored.origin === 'generated' ? 'secrets generated and saved' : 'secrets loaded', {
    path: stored.path,
    count: stored.secrets.length,
  });
  return stored.secrets.map((s) => s.bytes);
}

function listenError(config: Config, code: string, message: string): Error {
  if (code === 'EACCES' && config.port < 1024) {
    return new Error(
      `PORT: cannot listen on port ${config.port} (${message}). Ports below 1024 need root or the ` +
        'CAP_NET_BIND_SERVICE capability; use a port such as 8443 and forward 443 to it, or grant the capability',
    );
  }
  if (code === 'EADDRINUSE') {
    return new Error(
      `PORT: port ${config.port} is already in use by another program (${message}). Choose another PORT`,
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    return new Error(`BIND: ${config.bind} is not an address of this machine (${message})`);
  }
  return new Error(`cannot listen on port ${config.port}: ${message}`);
}
