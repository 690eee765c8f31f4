/**
 * The events a service can subscribe to (OpenID SSF 1.0 with RISC and CAEP event types), by
 * the short names the CLI takes and the URIs the Security Event Tokens carry.
 */
export const eventTypes = {
  'account-purged': 'https://schemas.openid.net/secevent/risc/event-type/account-purged',
  'account-disabled': 'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
  'account-enabled': 'https://schemas.openid.net/secevent/risc/event-type/account-enabled',
  'identifier-changed': 'https://schemas.openid.net/secevent/risc/event-type/identifier-changed',
  'credential-change': 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  'session-revoked': 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
} as const;

export type EventName = keyof typeof eventTypes;
export type EventUri = (typeof eventTypes)[EventName];

export const eventNames = Object.keys(eventTypes) as EventName[];
export const eventUris = Object.values(eventTypes) as EventUri[];

/** Sent when a service asks its stream to prove it works (SSF §8.1.4); not subscribable. */
export const verificationEventUri = 'https://schemas.openid.net/secevent/ssf/event-type/verification';

export function isEventUri(value: unknown): value is EventUri {
  return typeof value === 'string' && (eventUris as string[]).includes(value);
}

export function isEventName(value: unknown): value is EventName {
  return typeof value === 'string' && value in eventTypes;
}

export const nameOfEvent = (uri: string): EventName | undefined => eventNames.find((name) => eventTypes[name] === uri);

/** CAEP credential-change: which credential, and what happened to it. */
export interface CredentialChange {
  credential_type: 'password' | 'fido2-platform' | 'app';
  change_type: 'create' | 'revoke' | 'update' | 'delete';
}
