import type { Logger } from '../logger.js';

/** One step of an ordered shutdown; `deadline` (epoch ms) is when it must have let go. */
export type ShutdownStep = readonly [name: string, run: (deadline: number) => Promise<void> | void];

/**
 * On SIGTERM or SIGINT, runs `steps` once, in order, and exits: 0 when every step finished,
 * 1 when one failed or the whole took longer than `timeoutMs` (kept under the platform's 30 s
 * SIGKILL, so the process always leaves on its own terms). A second Ctrl-C exits at once.
 */
export function exitOnSignals(log: Logger, timeoutMs: number, steps: ShutdownStep[]): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      if (signal === 'SIGINT') process.exit(130);
      return;
    }
    stopping = true;
    const started = Date.now();
    // Steps get a little less than the whole, so the last of them can still close cleanly.
    const deadline = started + timeoutMs - Math.min(2_000, timeoutMs / 4);
    log.info({ signal, timeoutMs }, 'shutting down');
    setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown timed out, exiting');
      process.exit(1);
    }, timeoutMs).unref();

    let code = 0;
    for (const [name, run] of steps) {
      try {
        // A step stuck past the deadline (Redis gone) must not keep the next ones from running.
        await Promise.race([run(deadline), overdue(name, deadline)]);
        log.debug({ step: name }, 'shutdown step done');
      } catch (error) {
        code = 1;
        log.error({ err: error, step: name }, 'shutdown step failed');
      }
    }
    log.info({ durationMs: Date.now() - started, code }, 'stopped');
    process.exit(code);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void stop(signal));
  }
}

function overdue(step: string, deadline: number): Promise<never> {
  return new Promise((_, reject) => {
    setTimeout(
      () => {
        reject(new Error(`${step} did not finish by the deadline`));
      },
      Math.max(0, deadline - Date.now()) + 500,
    ).unref();
  });
}

/** A crash is logged and ends the process; BullMQ re-runs its jobs elsewhere (at-least-once). */
export function exitOnCrash(log: Logger): void {
  const crash = (error: unknown) => {
    log.fatal({ err: error }, 'crashed');
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}
