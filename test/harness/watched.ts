/** A list that grows (received mail, log lines), with promises for the first matching item. */
export class Watched<T> {
  readonly items: T[] = [];
  readonly #waiters = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const waiter of this.#waiters) waiter();
  }

  /**
   * Resolves with the first item, past or future, that `match` accepts. Rejects after
   * `timeoutMs`, or when `gone` settles first (the producer died): `describe()` says why.
   */
  waitFor(
    match: (item: T) => boolean,
    {
      timeoutMs,
      describe,
      gone,
    }: { timeoutMs: number; describe: () => string; gone?: Promise<unknown> },
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.items.find(match);
        if (found === undefined) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const fail = (why: string) => {
        cleanup();
        reject(new Error(`${why}: ${describe()}`));
      };
      const timer = setTimeout(() => {
        fail(`nothing matched within ${timeoutMs} ms`);
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      if (check()) return;
      this.#waiters.add(check);
      void gone?.then(() => {
        if (this.#waiters.has(check) && !check()) fail('ended before a match');
      });
    });
  }
}
