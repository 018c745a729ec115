// Telegram's middle-proxy list (getProxyConfig / getProxyConfigV6), grammar of the official
// mtproto/mtproto-config.c (§6.2):
//
//   proxy_for <id> <host>:<port>;   id -32768..32767; host IPv4, [IPv6] or name
//   proxy <host>:<port>;            the same as proxy_for 0
//   default <id>;  timeout <ms>;  min_connections <n>;  max_connections <n>;
//
// `#` comments to the end of the line. All lines of one id must be consecutive. Any error rejects
// the whole text (a caller refreshing the list keeps the previous one).
import { isIPv4, isIPv6 } from 'node:net';
import { ProtocolError } from '../../protocol/errors.js';

export interface HostPort {
  /** IPv4 or IPv6 literal (brackets removed, spelled as in the file) or a DNS name. */
  readonly host: string;
  readonly port: number;
}

export interface MiddleProxyConfig {
  /** Cluster for DC ids without their own: `default N;`, 0 when absent (as the official proxy). */
  readonly defaultDc: number;
  /** Signed cluster id -> middle-ends in file order; a client's target is picked among them. */
  readonly targets: ReadonlyMap<number, readonly HostPort[]>;
  readonly timeoutMs: number;
  /** Connections to keep per middle-end (official defaults 4 and 8). */
  readonly minConnections: number;
  readonly maxConnections: number;
}

export class ProxyConfigError extends ProtocolError {
  readonly line: number;

  constructor(line: number, message: string) {
    super('ERR_MP_CONFIG', `proxy config line ${line}: ${message}`);
    this.name = 'ProxyConfigError';
    this.line = line;
  }
}

// Limits of the official parser (mtproto-config.h, common/parse-config.c).
const MAX_TEXT = 16 << 20;
const MAX_TARGETS = 4096;
const MAX_CLUSTERS = 1024;
const MAX_HOST = 63;
const DEFAULTS = { timeoutMs: 300, minConnections: 4, maxConnections: 8 };

const BRACKETED = /\[[A-Za-z0-9._:-]*\]/y;
const WORD_RUN = /[A-Za-z0-9._-]+/y;

class Scanner {
  private at = 0;
  line = 1;

  constructor(private readonly text: string) {}

  /** Skip whitespace and comments; true if something is left. */
  more(): boolean {
    const t = this.text;
    while (this.at < t.length) {
      const c = t[this.at];
      if (c === '#') {
        const eol = t.indexOf('\n', this.at);
        this.at = eol < 0 ? t.length : eol;
      } else if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
        if (c === '\n') this.line++;
        this.at++;
      } else {
        return true;
      }
    }
    return false;
  }

  /** A word of the official lexer: letters, digits, `.`, `-`, `_`, or an `[...]` address. */
  word(what: string): string {
    this.more();
    for (const re of [BRACKETED, WORD_RUN]) {
      re.lastIndex = this.at;
      const m = re.exec(this.text);
      if (m) {
        this.at += m[0].length;
        return m[0];
      }
    }
    return this.fail(`${what} expected${this.near()}`);
  }

  expect(ch: string): void {
    if (!this.more() || this.text[this.at] !== ch) this.fail(`'${ch}' expected${this.near()}`);
    this.at++;
  }

  fail(message: string): never {
    throw new ProxyConfigError(this.line, message);
  }

  private near(): string {
    const rest = this.text.slice(this.at, this.at + 20).split('\n')[0];
    return rest ? ` near ${JSON.stringify(rest)}` : ' at end of text';
  }
}

function integer(s: Scanner, word: string, min: number, max: number, what: string): number {
  const n = /^-?\d{1,12}$/.test(word) ? Number(word) : Number.NaN;
  if (!(n >= min && n <= max))
    s.fail(`${what} must be an integer ${min}..${max}, got ${JSON.stringify(word)}`);
  return n;
}

function hostPort(s: Scanner): HostPort {
  const word = s.word('host');
  if (word.length > MAX_HOST) s.fail(`host name longer than ${MAX_HOST} characters`);
  let host = word;
  if (word.startsWith('[')) {
    host = word.slice(1, -1);
    if (!isIPv6(host)) s.fail(`${word} is not an IPv6 address`);
  } else if (/^[\d.]+$/.test(word) && !isIPv4(word)) {
    s.fail(`${word} is not an IPv4 address`);
  }
  s.expect(':');
  const port = integer(s, s.word('port number'), 1, 0xffff, 'port');
  return { host, port };
}

export function parseProxyConfig(text: string): MiddleProxyConfig {
  const s = new Scanner(text);
  if (text.length > MAX_TEXT) s.fail(`config longer than ${MAX_TEXT} bytes`);
  const targets = new Map<number, HostPort[]>();
  let lastId: number | undefined;
  let total = 0;
  let defaultDc = 0;
  let { timeoutMs, minConnections, maxConnections } = DEFAULTS;

  while (s.more()) {
    const keyword = s.word('statement');
    switch (keyword) {
      case 'proxy_for':
      case 'proxy': {
        const id = keyword === 'proxy' ? 0 : integer(s, s.word('target id'), -0x8000, 0x7fff, 'target id');
        const target = hostPort(s);
        if (++total > MAX_TARGETS) s.fail(`more than ${MAX_TARGETS} targets`);
        const cluster = targets.get(id);
        if (cluster === undefined) {
          if (targets.size >= MAX_CLUSTERS) s.fail(`more than ${MAX_CLUSTERS} clusters`);
          targets.set(id, [target]);
        } else if (id === lastId) {
          cluster.push(target);
        } else {
          s.fail(`proxies for dc ${id} intermixed`);
        }
        lastId = id;
        break;
      }
      case 'default':
        defaultDc = integer(s, s.word('target id'), -0x8000, 0x7fff, 'target id');
        break;
      case 'timeout':
        timeoutMs = integer(s, s.word('timeout'), 10, 30000, 'timeout');
        break;
      case 'min_connections':
        minConnections = integer(s, s.word('number'), 1, maxConnections, 'min_connections');
        break;
      case 'max_connections':
        maxConnections = integer(s, s.word('number'), minConnections, 1000, 'max_connections');
        break;
      default:
        s.fail(`unknown statement ${JSON.stringify(keyword)}; 'proxy_for <id> <host>:<port>;' expected`);
    }
    s.expect(';');
  }
  if (targets.size === 0) s.fail('no proxy_for lines: no middle-end to forward to');
  return { defaultDc, targets, timeoutMs, minConnections, maxConnections };
}

/** Middle-ends for a client's DC index: its own cluster, else the default one (official lookup). */
export function targetsForDc(config: MiddleProxyConfig, dc: number): readonly HostPort[] | undefined {
  return config.targets.get(dc) ?? config.targets.get(config.defaultDc);
}
