// A stand-in for Telegram's getProxyConfig endpoint on 127.0.0.1: serves a text the test can
// change, or fails with an HTTP status, and counts what it answered so a test knows a refresh
// has fetched the current answer.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';

interface Answer {
  readonly status: number;
  readonly body: string;
}

export class ConfigServer {
  /** GET requests answered since start. */
  requests = 0;
  /** The Date header to send (Telegram's clock, as the test wants it); undefined: the real time. */
  dateHeader: (() => string | undefined) | undefined;
  #answer: Answer;
  #sinceChange = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    body: string,
  ) {
    this.#answer = { status: 200, body };
  }

  static async start(body: string): Promise<ConfigServer> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('config server: no TCP address');
    const standin = new ConfigServer(server, address.port, body);
    server.on('request', (req, res) => {
      req.resume();
      standin.requests++;
      standin.#sinceChange++;
      const { status, body: text } = standin.#answer;
      if (standin.dateHeader !== undefined) {
        const date = standin.dateHeader();
        if (date === undefined) res.sendDate = false;
        else res.setHeader('date', date);
      }
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    return standin;
  }

  /** The address to give as PROXY_CONFIG_URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/getProxyConfig`;
  }

  /** Requests answered with the current answer (since the last serve() or fail()). */
  get requestsSinceChange(): number {
    return this.#sinceChange;
  }

  /** From now on, answer 200 with this text. */
  serve(body: string): void {
    this.#answer = { status: 200, body };
    this.#sinceChange = 0;
  }

  /** From now on, answer with this status (and a short HTML body, as a failing web server would). */
  fail(status = 500): void {
    this.#answer = { status, body: `<html><body>${status}</body></html>\n` };
    this.#sinceChange = 0;
  }

  /** Resolves once `count` requests got the current answer; rejects after the timeout. */
  async waitForRequests(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#sinceChange < count) {
      if (Date.now() >= deadline) {
        throw new Error(`config server: ${this.#sinceChange} of ${count} requests within ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
