import type { Queryable } from '../db/index.js';

/** The device behind a sign-in session, as the Security page shows it. */
export interface SessionDevice {
  browser: string;
  os: string;
  ipPrefix: string | null;
  firstSeenAt: Date;
  lastSeenAt: Date;
}

/** Notes that a session was used from this device now (its first use creates the row). */
export async function recordSessionDevice(
  db: Queryable,
  device: { sessionUid: string; accountId: string; browser: string; os: string; ipPrefix: string | undefined },
): Promise<void> {
  await db.query(
    `INSERT INTO session_devices (session_uid, account_id, browser, os, ip_prefix) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (session_uid) DO UPDATE
       SET account_id = excluded.account_id, browser = excluded.browser, os = excluded.os,
           ip_prefix = excluded.ip_prefix, last_seen_at = now()`,
    [device.sessionUid, device.accountId, device.browser, device.os, device.ipPrefix ?? null],
  );
}

export async function sessionDevicesOf(db: Queryable, accountId: string): Promise<Map<string, SessionDevice>> {
  const { rows } = await db.query<{
    session_uid: string;
    browser: string;
    os: string;
    ip_prefix: string | null;
    first_seen_at: Date;
    last_seen_at: Date;
  }>('SELECT session_uid, browser, os, ip_prefix, first_seen_at, last_seen_at FROM session_devices WHERE account_id = $1', [accountId]);
  return new Map(
    rows.map((row) => [
      row.session_uid,
      { browser: row.browser, os: row.os, ipPrefix: row.ip_prefix, firstSeenAt: row.first_seen_at, lastSeenAt: row.last_seen_at },
    ]),
  );
}

export async function forgetSessionDevice(db: Queryable, sessionUid: string): Promise<void> {
  await db.query('DELETE FROM session_devices WHERE session_uid = $1', [sessionUid]);
}
