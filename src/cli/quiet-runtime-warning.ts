// oidc-provider warns at import that Node 20 is not its preferred runtime (see README).
// The CLI keeps stderr for one-line errors, so that single known notice is dropped. This
// module is the CLI's first import, so the filter is in place before oidc-provider loads.
const originalWarn = console.warn;
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
  originalWarn(...args);
};

export {};
