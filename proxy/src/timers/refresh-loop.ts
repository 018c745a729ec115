// Doing something again every interval, one run at a time: the next run is timed from the end of
// the last one (a slow source is never asked twice at once), a run asked for by hand while one is
// under way joins it, and after stop() nothing new starts.
import { REAL_SCHEDULER, type Scheduler } from './scheduler.js';

export class RefreshLoop {
  readonly #run: () => Promise<void>;
  readonly #intervalMs: number;
  readonly #scheduler: Scheduler;
  #timer: unknown;
  #stopped = false;
  #running: Promise<void> | undefined;

  /** `run` must not reject; `intervalMs` 0 or less: only runs asked for by hand. */
  constructor(run: () => Promise<void>, intervalMs: number, scheduler: Scheduler = REAL_SCHEDULER) {
    this.#run = run;
    this.#intervalMs = intervalMs;
    this.#scheduler = scheduler;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Times the first run an interval from now. */
  start(): void {
    this.#schedule();
  }

  /** Runs now (or joins the run under way); resolves when it is done. */
  runNow(): Promise<void> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#stopped || this.#intervalMs <= 0) return;
    this.#timer = this.#scheduler.setTimeout(() => {
      this.#timer = undefined;
      void this.runNow().then(() => this.#schedule());
    }, this.#intervalMs);
  }
}
