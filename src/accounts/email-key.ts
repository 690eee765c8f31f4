/**
 * The one normalisation of an email address, stored as the account's lookup key (unique) and
 * used for every comparison and every rate-limit key: Unicode NFC, then JavaScript's
 * locale-independent lower-casing. Postgres `lower()` is never used on addresses: it and
 * JavaScript disagree on some letters (`İ`), and two rules would give one address two keys
 * (a fresh lockout counter for the same account).
 */
export function emailKey(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}
