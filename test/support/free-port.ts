// A free TCP port on 127.0.0.1, for servers the tests and the benchmark start. (Another process
// may take it before it is used; on loopback, in a test run, that does not happen in practice.)
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
