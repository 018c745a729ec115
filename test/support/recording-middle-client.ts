// A client as a middle-end connection or the pool sees it (MiddleClientHandler): it records what
// it is handed, for the tests to read.
import type { MiddleClientHandler, MiddleCloseReason } from '../../proxy/src/middle/connection.js';

export class RecordingClient implements MiddleClientHandler {
  readonly answers: Buffer[] = [];
  readonly acks: Buffer[] = [];
  readonly closes: MiddleCloseReason[] = [];
  drains = 0;
  answer(data: Buffer): void {
    this.answers.push(Buffer.from(data));
  }
  simpleAck(token: Buffer): void {
    this.acks.push(Buffer.from(token));
  }
  closed(reason: MiddleCloseReason): void {
    this.closes.push(reason);
  }
  drain(): void {
    this.drains++;
  }
}
