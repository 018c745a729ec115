// Drives the real client library (gramjs, npm `telegram`) far enough to prove a connection works:
// it asks for resPQ, and only continues to req_DH_params if the answer reached it intact, so a
// req_DH_params at the stand-in DC carrying the nonces of our resPQ is an end-to-end round trip.
//
// What gramjs does with an MTProxy (node_modules/telegram/network/connection/TCPMTProxy.js and
// client/telegramBaseClient.js): any `proxy` with `MTProxy` selects ConnectionTCPMTProxyAbridged,
// so the inner transport is ALWAYS abridged (tag efefefef), even for a `dd` secret, whose prefix
// it only strips. `ee` secrets are refused (it wants 16 key bytes). The DC index goes into the
// header with writeInt8, so only DCs -128..127 can be asked for.
import { Logger, TelegramClient } from 'telegram';
import { PromisedNetSockets } from 'telegram/extensions/index.js';
import { LogLevel } from 'telegram/extensions/Logger.js';
import { ConnectionTCPObfuscated } from 'telegram/network/connection/index.js';
import { StringSession } from 'telegram/sessions/index.js';
import type { DcMessage, StandinDc } from './standin-dc.js';

export interface GramjsHandshakeOptions {
  /** The stand-in DC that is expected to see the handshake. */
  dc: StandinDc;
  /** Which DC the client asks for. Default 2. */
  dcId?: number;
  /** Default 15000 ms. */
  timeoutMs?: number;
}

// Dummy credentials: the key exchange happens before the API id is ever sent.
const API_ID = 1;
const API_HASH = '00000000000000000000000000000000';

function quietClient(extra: ConstructorParameters<typeof TelegramClient>[3]): TelegramClient {
  return new TelegramClient(new StringSession(''), API_ID, API_HASH, {
    baseLogger: new Logger(LogLevel.NONE),
    // One attempt, no reconnects: when the test is over, destroy() ends the client for good.
    connectionRetries: 1,
    retryDelay: 1,
    autoReconnect: false,
    ...extra,
  });
}

async function handshake(
  client: TelegramClient,
  options: GramjsHandshakeOptions,
  port: number,
): Promise<DcMessage> {
  const { dc, dcId = 2, timeoutMs = 15_000 } = options;
  // The address is not used through a proxy (the proxy picks the DC from the header's index).
  client.session.setDC(dcId, '127.0.0.1', port);
  const since = dc.messages.length;
  const dhRequest = dc.waitForDhRequest(timeoutMs, since);
  const connecting = client.connect().catch(() => false);
  try {
    return await dhRequest;
  } finally {
    await client.destroy().catch(() => {});
    await connecting;
  }
}

/**
 * A gramjs client connects through the MTProxy at 127.0.0.1:`proxyPort` with `secret` (plain hex
 * or `dd` + hex) and asks for DC `dcId`. Resolves with the req_DH_params the stand-in DC received,
 * or rejects after the timeout. The client is destroyed either way.
 */
export function gramjsHandshakeViaProxy(
  options: GramjsHandshakeOptions & { proxyPort: number; secret: string },
): Promise<DcMessage> {
  const client = quietClient({
    proxy: { ip: '127.0.0.1', port: options.proxyPort, secret: options.secret, MTProxy: true },
  });
  return handshake(client, options, options.proxyPort);
}

/**
 * The same without a proxy: gramjs's obfuscated connection (abridged inside obfuscated2, no
 * secret) straight to the stand-in DC. TelegramClient.connect() always dials port 80 (or 443), so
 * the socket class is swapped for one that dials the stand-in's port instead.
 */
export function gramjsHandshakeDirect(options: GramjsHandshakeOptions): Promise<DcMessage> {
  const port = options.dc.port;
  class ToStandin extends PromisedNetSockets {
    override connect(_port: number, _ip: string): Promise<unknown> {
      return super.connect(port, '127.0.0.1');
    }
  }
  const client = quietClient({ connection: ConnectionTCPObfuscated, networkSocket: ToStandin });
  return handshake(client, options, port);
}
