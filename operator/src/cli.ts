#!/usr/bin/env node
// `mtproxy-operator`: runs MTProxy resources, in a cluster (its ServiceAccount) or from a
// workstation (KUBECONFIG). SIGTERM/SIGINT stop it gracefully: running reconciles finish and the
// Lease is released so a standby replica takes over at once.
import { KubeConfig } from '@kubernetes/client-node';
import { helpText, OperatorConfigError, parseOperatorConfig } from './config.js';
import { errorMessage } from './controller/redact.js';
import { createLogger } from './logging.js';
import { Operator } from './operator.js';

async function main(): Promise<number> {
  let config: ReturnType<typeof parseOperatorConfig>;
  try {
    config = parseOperatorConfig(process.env, process.argv.slice(2));
  } catch (err) {
    if (err instanceof OperatorConfigError) {
      process.stderr.write(
        `mtproxy-operator: ${err.message}\nRun \`mtproxy-operator --help\` for the options.\n`,
      );
      return 2;
    }
    throw err;
  }
  if (config.help) {
    process.stdout.write(helpText());
    return 0;
  }
  const log = createLogger(config.logLevel);
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
    if (!kubeConfig.getCurrentCluster()) throw new Error('no cluster in the kubeconfig');
  } catch (err) {
    log.error('no Kubernetes access: run in a pod or set KUBECONFIG', { error: errorMessage(err) });
    return 2;
  }

  const operator = new Operator({
    kubeConfig,
    namespaces: config.namespaces,
    leaderElect: config.leaderElect,
    leaseNamespace: config.leaseNamespace,
    leaseName: config.leaseName,
    metricsPort: config.metricsPort,
    metricsBind: config.metricsBind,
    defaultProxyImage: config.defaultProxyImage,
    policy: config.policy,
    resyncPeriodMs: config.resyncPeriodMs,
    concurrency: config.concurrency,
    log,
  });
  await operator.start();

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info('stopping', { signal });
  const forced = setTimeout(() => {
    log.error('graceful stop took too long; exiting');
    process.exit(1);
  }, 25_000);
  forced.unref();
  await operator.stop();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mtproxy-operator: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
