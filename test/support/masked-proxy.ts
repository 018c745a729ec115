// Our proxy as the masking suites run it: a stand-in DC 2 behind it and a mask site for every
// handshake that fails (docs/protocol.md §4.6), all three on 127.0.0.1.
import { type MaskServer, maskReceived, startMaskServer } from './mask-server.js';
import { probe } from './probe.js';
import { type ProxyProcess, startProxy } from './proxy-process.js';
import { type StandinDc, startStandinDc } from './standin-dc.js';

export interface MaskedProxy {
  readonly dc: StandinDc;
  readonly mask: MaskServer;
  readonly proxy: ProxyProcess;
}

/**
 * Starts a stand-in DC, a mask site and the proxy with DC_ADDRS, MASK_HOST and MASK_PORT pointing
 * at them; `env` gives the rest (SECRET, modes, timeouts). If something does not start, what did is
 * stopped again before the error is passed on.
 */
export async function startMaskedProxy(env: Record<string, string>): Promise<MaskedProxy> {
  const dc = await startStandinDc();
  let mask: MaskServer | undefined;
  try {
    mask = await startMaskServer();
    const proxy = await startProxy({
      env: {
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
        MASK_HOST: '127.0.0.1',
        MASK_PORT: String(mask.port),
        ...env,
      },
    });
    return { dc, mask, proxy };
  } catch (err) {
    await stopMaskedProxy({ mask, dc });
    throw err;
  }
}

/**
 * Stops what of a masked proxy is running, the proxy first: a suite's `after` passes whatever its
 * `before` got to start. Every part is stopped even if an earlier one fails; the first failure is
 * passed on then.
 */
export async function stopMaskedProxy(parts: Partial<MaskedProxy>): Promise<void> {
  const failures: unknown[] = [];
  for (const part of [parts.proxy, parts.mask, parts.dc]) {
    try {
      await part?.stop();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw failures[0];
}

/**
 * Sends `bytes` to the proxy as a prober would; the mask site must receive them byte for byte
 * within 5 s (a proxy that answered itself would not pass them on).
 */
export async function expectMasked(
  proxy: { readonly port: number },
  mask: MaskServer,
  bytes: Buffer,
  probeTimeoutMs = 3_000,
): Promise<void> {
  const since = mask.connections.length;
  await probe(proxy.port, bytes, { timeoutMs: probeTimeoutMs });
  await maskReceived(mask, bytes, since, 5_000);
}
