// A lean stand-in DC for the benchmark, run as its own process so its CPU is never counted as the
// proxy's. It reads the secretless obfuscated2 header a proxy sends (docs/protocol.md §5.2),
// checks the protocol tag, and then echoes the decrypted stream back encrypted with the reverse
// key: the same packets come back in the same framing, without parsing them. test/support's
// stand-in DC does more (resPQ, recording) and costs more per byte; this one only echoes.
//
// Started with an IPC channel: sends {type:'listening', port}; answers {type:'stats'} with
// {type:'stats', ...counts}.
import { type Cipheriv, createCipheriv, createSecretKey } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { HEADER_LEN } from '../proxy/src/protocol/obfuscated2.js';

const TAG_WORDS = new Set([0xefefefef, 0xeeeeeeee, 0xdddddddd]);

const stats = { connections: 0, open: 0, rejected: 0, bytes: 0 };

/** AES-256-CTR; a KeyObject key makes createCipheriv several times cheaper than a Buffer key. */
function ctr(key: Buffer, iv: Buffer): Cipheriv {
  return createCipheriv('aes-256-ctr', createSecretKey(key), iv);
}

function keysOf(header: Buffer): { decryptor: Cipheriv; encryptor: Cipheriv } {
  const r = Buffer.from(header.subarray(8, 56)).reverse();
  return {
    decryptor: ctr(header.subarray(8, 40), header.subarray(40, 56)),
    encryptor: ctr(r.subarray(0, 32), r.subarray(32, 48)),
  };
}

function serve(socket: Socket): void {
  stats.connections++;
  stats.open++;
  socket.setNoDelay(true);
  socket.on('error', () => {});
  socket.once('close', () => stats.open--);
  let pending: Buffer = Buffer.alloc(0);
  const onHeader = (chunk: Buffer): void => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    if (pending.length < HEADER_LEN) return;
    socket.off('data', onHeader);
    const { decryptor, encryptor } = keysOf(pending);
    const plain = decryptor.update(pending.subarray(0, HEADER_LEN));
    if (!TAG_WORDS.has(plain.readUInt32LE(56))) {
      stats.rejected++;
      socket.destroy();
      return;
    }
    const echo = (bytes: Buffer): void => {
      if (bytes.length === 0) return;
      stats.bytes += bytes.length;
      if (!socket.write(encryptor.update(decryptor.update(bytes)))) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    };
    echo(pending.subarray(HEADER_LEN));
    socket.on('data', echo);
  };
  socket.on('data', onHeader);
}

const server = createServer({ noDelay: true }, serve);
server.maxConnections = 1_000_000;
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('echo DC: no TCP address');
  process.send?.({ type: 'listening', port: address.port });
});

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'stats') process.send?.({ type: 'stats', ...stats });
});
process.on('disconnect', () => process.exit(0));
