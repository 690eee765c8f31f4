import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  payload: AdapterPayload;
  expiresAt: number | undefined;
}

const entries = new Map<string, Entry>();
const sessionIdsByUid = new Map<string, string>();
const keysByGrant = new Map<string, Set<string>>();
const grantsByAccountAndClient = new Map<string, string>();

/** The newest grant of an account to a client: the same lookup our Postgres query makes (oidc/artefacts.ts). */
export async function findAccountGrant(accountId: string, clientId: string): Promise<string | undefined> {
  const id = grantsByAccountAndClient.get(`${accountId}\0${clientId}`);
  return id && entries.has(`Grant:${id}`) ? id : undefined;
}
const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** Expired entries go every 10 s, as Postgres rows go with our sweeper. */
setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of entries) if (entry.expiresAt !== undefined && entry.expiresAt <= now) entries.delete(key);
}, 10_000).unref();

/**
 * oidc-provider's MemoryAdapter semantics on a plain Map. Its own adapter is an LRU of
 * 1000 entries: under benchmark load it evicts live clients, sessions and tokens and the
 * reference starts failing, so the reference keeps everything until it expires instead.
 */
export class MapAdapter implements Adapter {
  constructor(readonly model: string) {}

  private key(id: string): string {
    return `${this.model}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
    const key = this.key(id);
    entries.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    if (this.model === 'Session' && payload.uid) sessionIdsByUid.set(payload.uid, id);
    if (this.model === 'Grant' && payload.accountId && payload.clientId)
      grantsByAccountAndClient.set(`${payload.accountId}\0${payload.clientId}`, id);
    if (grantable.has(this.model) && payload.grantId) {
      let keys = keysByGrant.get(payload.grantId);
      if (!keys) keysByGrant.set(payload.grantId, (keys = new Set()));
      keys.add(key);
    }
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const entry = entries.get(this.key(id));
    if (!entry || (entry.expiresAt !== undefined && entry.expiresAt <= Date.now())) return undefined;
    return entry.payload;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = sessionIdsByUid.get(uid);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(): Promise<AdapterPayload | undefined> {
    return undefined;
  }

  async consume(id: string): Promise<void> {
    const entry = entries.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    entries.delete(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    for (const key of keysByGrant.get(grantId) ?? []) entries.delete(key);
    keysByGrant.delete(grantId);
  }
}
