// Middle mode, the worker's budget for answers queued to clients that do not read them (issue 13,
// item 3). Each client is capped on its own (MIDDLE_CLIENT_BACKLOG, in client-relay.ts); this
// caps them together (MIDDLE_BACKLOG_BUDGET), so a thousand clients each just under their own cap
// cannot push the worker out of memory. Past the budget the clients with the largest backlogs are
// closed first: they are the ones holding the memory, and a client that reads keeps a small one.
// Only clients whose backlog reached HEAVY_BYTES are watched, so the check never walks every client.

/** A client as the budget sees it. */
export interface BacklogHolder {
  /** Bytes queued to it and not yet on the wire. */
  readonly backlog: number;
  readonly closed: boolean;
  /** Close it for flooding (as the per-client cap does). */
  shed(): void;
}

/** Backlogs below this are not watched (a reading client sits far below it). */
const HEAVY_BYTES = 64 * 1024;
/** How often the watched backlogs are added up, besides when a new client turns heavy. */
const CHECK_INTERVAL_MS = 200;

export class BacklogBudget {
  readonly #budget: number;
  readonly #heavy = new Set<BacklogHolder>();
  #timer: NodeJS.Timeout | undefined;
  #shed = 0;

  constructor(budgetBytes: number) {
    this.#budget = budgetBytes;
  }

  /** Tell the budget a client's backlog grew. Cheap when it is small or already watched. */
  grew(holder: BacklogHolder): void {
    if (holder.backlog < HEAVY_BYTES || this.#heavy.has(holder)) return;
    this.#heavy.add(holder);
    this.check();
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.check(), CHECK_INTERVAL_MS);
      this.#timer.unref();
    }
  }

  /** Adds up the watched backlogs; past the budget, closes the largest until it fits. */
  check(): void {
    let total = 0;
    for (const h of this.#heavy) {
      if (h.closed || h.backlog < HEAVY_BYTES / 2) this.#heavy.delete(h);
      else total += h.backlog;
    }
    if (this.#heavy.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    if (total <= this.#budget) return;
    const largest = [...this.#heavy].sort((a, b) => b.backlog - a.backlog);
    for (const h of largest) {
      if (total <= this.#budget) break;
      total -= h.backlog;
      this.#heavy.delete(h);
      this.#shed++;
      h.shed();
    }
  }

  /** Bytes queued to the watched clients now. */
  get queued(): number {
    let total = 0;
    for (const h of this.#heavy) total += h.backlog;
    return total;
  }

  /** Clients closed to keep within the budget, since start. */
  get shedCount(): number {
    return this.#shed;
  }
}
