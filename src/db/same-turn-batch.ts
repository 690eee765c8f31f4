interface Waiting<K, V> {
  key: K;
  resolve: (value: V | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers the lookups asked for in one turn of the event loop and runs them together:
 * `one` for a lone key (its single-row statement), `many` for several (one statement for
 * all). `many` returns what it found by `idOf(key)`; each caller gets only its own value.
 */
export function sameTurnBatch<K, V>(options: {
  one: (key: K) => Promise<V | undefined>;
  many: (keys: K[]) => Promise<Map<string, V>>;
  idOf: (key: K) => string;
}): (key: K) => Promise<V | undefined> {
  let waiting: Waiting<K, V>[] = [];

  async function flush(): Promise<void> {
    const batch = waiting;
    waiting = [];
    try {
      if (batch.length === 1) {
        const [only] = batch as [Waiting<K, V>];
        only.resolve(await options.one(only.key));
        return;
      }
      const found = await options.many(batch.map((lookup) => lookup.key));
      for (const lookup of batch) lookup.resolve(found.get(options.idOf(lookup.key)));
    } catch (error) {
      for (const lookup of batch) lookup.reject(error);
    }
  }

  return (key) =>
    new Promise((resolve, reject) => {
      // setImmediate, not a microtask: the other lookups of this turn are still to be asked.
      if (waiting.length === 0) setImmediate(() => void flush());
      waiting.push({ key, resolve, reject });
    });
}

/**
 * The writes asked for in one turn of the event loop, as one statement: `one` for a lone
 * write, `many` for several with distinct keys (a multi-row statement, committed at once, so
 * every caller still waits for its own row's commit). Writes of one key twice in a turn, or a
 * batch whose statement fails, run one by one: each caller gets its own write's outcome.
 */
export function sameTurnWriteBatch<W>(options: {
  one: (write: W) => Promise<void>;
  many: (writes: W[]) => Promise<void>;
  idOf: (write: W) => string;
}): (write: W) => Promise<void> {
  let waiting: Waiting<W, void>[] = [];

  const alone = (write: Waiting<W, void>) => options.one(write.key).then(write.resolve, write.reject);

  async function flush(): Promise<void> {
    const batch = waiting;
    waiting = [];
    if (batch.length > 1 && new Set(batch.map((write) => options.idOf(write.key))).size === batch.length) {
      try {
        await options.many(batch.map((write) => write.key));
        for (const write of batch) write.resolve(undefined);
        return;
      } catch {
        // One bad row fails the statement: the rows are written alone below, each with its own outcome.
      }
    }
    for (const write of batch) await alone(write);
  }

  return (write) =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(() => void flush());
      waiting.push({ key: write, resolve, reject });
    });
}
