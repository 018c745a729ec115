// A lean stand-in middle proxy for the benchmark, in its own process so that its CPU is never
// counted as the proxy's. Built from the proxy's own middle-proxy codecs with the roles swapped,
// like test/support/standin-middle-proxy.ts, but it records nothing: it answers RPC_NONCE and
// RPC_HANDSHAKE (docs/protocol.md §6.4-§6.6), echoes the packet of every RPC_PROXY_REQ back in an
// RPC_PROXY_ANS (§6.8, §6.9), answers pings, and stops reading while the proxy is slow to read.
//
// Started with an IPC channel: sends {type:'listening', port, secretHex}.
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { HANDSHAKE_FLAG_CRC32C } from '../proxy/src/middle/codec/constants.js';
import { FrameReader, FrameWriter } from '../proxy/src/middle/codec/full-transport.js';
import { deriveConnectionKeys } from '../proxy/src/middle/codec/kdf.js';
import { encodeHandshake, parseHandshake, processId } from '../proxy/src/middle/codec/rpc-handshake.js';
import {
  encodePong,
  encodeProxyAnsHeader,
  parseProxyMessage,
} from '../proxy/src/middle/codec/rpc-messages.js';
import { encodeNonce, keySelectorOf, parseNonce, verifyNonce } from '../proxy/src/middle/codec/rpc-nonce.js';

const secret = randomBytes(128);
const keySelector = keySelectorOf(secret);
const now = (): number => Math.floor(Date.now() / 1000);

function serve(socket: Socket, port: number): void {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const reader = new FrameReader();
  const writer = new FrameWriter();
  const self = processId('127.0.0.1', port, process.pid & 0xffff, now());
  let state: 'nonce' | 'handshake' | 'ready' = 'nonce';

  const send = (payload: Buffer | readonly Buffer[]): void => {
    if (!socket.write(writer.frame(payload))) {
      socket.pause();
      socket.once('drain', () => socket.resume());
    }
  };

  const onFrame = (payload: Buffer): void => {
    if (state === 'nonce') {
      const theirs = parseNonce(payload);
      verifyNonce(theirs, { keySelector, now: now() });
      const ours = randomBytes(16);
      socket.write(writer.frame(encodeNonce({ keySelector, timestamp: now(), nonce: ours })));
      const keys = deriveConnectionKeys({
        nonceServer: ours,
        nonceClient: theirs.nonce,
        clientTimestamp: theirs.timestamp,
        server: { ip: socket.localAddress!, port: socket.localPort! },
        client: { ip: socket.remoteAddress!, port: socket.remotePort! },
        secret,
      });
      reader.startDecryption(keys.clientToServer);
      writer.startEncryption(keys.serverToClient);
      state = 'handshake';
      return;
    }
    if (state === 'handshake') {
      const theirs = parseHandshake(payload);
      const crc32c = (theirs.flags & HANDSHAKE_FLAG_CRC32C) !== 0;
      socket.write(
        writer.frame(
          encodeHandshake({ flags: crc32c ? HANDSHAKE_FLAG_CRC32C : 0, sender: self, peer: theirs.sender }),
        ),
      );
      if (crc32c) {
        reader.useCrc32c();
        writer.useCrc32c();
      }
      state = 'ready';
      return;
    }
    const message = parseProxyMessage(payload);
    if (message.kind === 'request') {
      send([encodeProxyAnsHeader(0, message.request.connId), message.request.packet]);
    } else if (message.kind === 'ping') {
      send(encodePong(message.pingId));
    }
  };

  socket.on('data', (chunk: Buffer) => {
    try {
      reader.push(chunk);
      for (let frame = reader.next(); frame; frame = reader.next()) onFrame(frame.payload);
    } catch (err) {
      process.stderr.write(`echo middle proxy: ${(err as Error).message}\n`);
      socket.destroy();
    }
  });
}

const server = createServer({ noDelay: true });
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('echo middle proxy: no TCP address');
  server.on('connection', (socket) => serve(socket, address.port));
  process.send?.({ type: 'listening', port: address.port, secretHex: secret.toString('hex') });
});
process.on('disconnect', () => process.exit(0));
