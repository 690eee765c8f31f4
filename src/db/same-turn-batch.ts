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
