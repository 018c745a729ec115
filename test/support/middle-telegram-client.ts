// Drives the real client library (gramjs) through our proxy in middle mode, where the "DC" that
// answers is a DcBehindMiddleProxy plugged into the stand-in middle proxy. As in
// telegram-client.ts, gramjs speaks abridged inside obfuscated2 with any MTProxy secret, and the
// exchange stops at req_DH_params, which the stand-in records: its arrival with the nonces of our
// resPQ proves the round trip client -> proxy -> middle proxy -> proxy -> client -> ... worked.
import type { Socket } from 'node:net';
import { Logger, TelegramClient } from 'telegram';
import { PromisedNetSockets } from 'telegram/extensions/index.js';
import { LogLevel } from 'telegram/extensions/Logger.js';
import { StringSession } from 'telegram/sessions/index.js';
import type { DcBehindMiddleProxy, KeyExchangeMessage } from './dc-behind-middle-proxy.js';

export interface MiddleHandshakeOptions {
  /** What answers behind the stand-in middle proxy. */
  readonly dc: DcBehindMiddleProxy;
  readonly proxyPort: number;
  /** Plain hex or `dd` + hex. */
  readonly secret: string;
  /** Which DC the client asks for. Default 2. */
  readonly dcId?: number;
  /** Default 15000 ms. */
  readonly timeoutMs?: number;
}

export interface MiddleHandshakeResult {
  /** The req_DH_params the DC behind the middle proxy received. */
  readonly dhRequest: KeyExchangeMessage;
  /** Local ports of the TCP connections gramjs opened to the proxy (what the proxy saw as the client's port). */
  readonly localPorts: readonly number[];
}

// Dummy credentials: the key exchange happens before the API id is ever sent.
const API_ID = 1;
const API_HASH = '00000000000000000000000000000000';

/**
 * A gramjs client connects through the MTProxy at 127.0.0.1:`proxyPort` and asks for DC `dcId`.
 * Resolves once req_DH_params reached the DC behind the middle proxy; rejects after the timeout.
 * The client is destroyed either way.
 */
export async function gramjsHandshakeViaMiddleProxy(
  options: MiddleHandshakeOptions,
): Promise<MiddleHandshakeResult> {
  const { dc, proxyPort, secret, dcId = 2, timeoutMs = 15_000 } = options;
  const localPorts: number[] = [];
  // gramjs keeps its net.Socket in a private field; the subclass only reads its local port.
  class PortRecordingSocket extends PromisedNetSockets {
    override async connect(port: number, ip: string): Promise<unknown> {
      const result = await super.connect(port, ip);
      const socket = (this as unknown as { client?: Socket }).client;
      if (socket?.localPort !== undefined) localPorts.push(socket.localPort);
      return result;
    }
  }
  const client = new TelegramClient(new StringSession(''), API_ID, API_HASH, {
    baseLogger: new Logger(LogLevel.NONE),
    proxy: { ip: '127.0.0.1', port: proxyPort, secret, MTProxy: true },
    networkSocket: PortRecordingSocket,
    // One attempt, no reconnects: when the test is over, destroy() ends the client for good.
    connectionRetries: 1,
    retryDelay: 1,
    autoReconnect: false,
  });
  // The address is not used through a proxy (the proxy picks the DC from the header's index).
  client.session.setDC(dcId, '127.0.0.1', proxyPort);
  const dhRequest = dc.waitForDhRequest(timeoutMs, dc.messages.length);
  const connecting = client.connect().catch(() => false);
  try {
    return { dhRequest: await dhRequest, localPorts };
  } finally {
    await client.destroy().catch(() => {});
    await connecting;
  }
}
