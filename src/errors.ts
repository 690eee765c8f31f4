/**
 * Typed errors thrown by domain code. `http/errors.ts` maps them to HTTP statuses and
 * pages; `cli/output.ts` maps them to exit codes. Messages are safe to show to users.
 */
export class DomainError extends Error {
  override name = 'DomainError';
}

/** The caller sent something we cannot accept (bad flag, bad form field, bad URI). */
export class InvalidInput extends DomainError {
  override name = 'InvalidInput';
  constructor(
    message: string,
    /** The input field it is about (a schema path such as `redirectUris.0`), when known. */
    readonly field?: (string | number)[],
  ) {
    super(message);
  }
}

export class NotFound extends DomainError {
  override name = 'NotFound';
}

/** The request conflicts with existing state (e.g. an email already registered). */
export class Conflict extends DomainError {
  override name = 'Conflict';
}

/** A dependency (the database) is not reachable; retrying later may succeed. */
export class Unavailable extends DomainError {
  override name = 'Unavailable';
  // Read by oidc-provider's own error handler, which answers with err.statusCode.
  readonly statusCode = 503;
}

/** Too much work is queued right now (password hashing); retry after the given time. */
export class Overloaded extends Unavailable {
  override name = 'Overloaded';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** A limit was reached (credential stuffing, brute force); retry after the given time. */
export class TooManyAttempts extends DomainError {
  override name = 'TooManyAttempts';
  constructor(readonly retryAfterSeconds: number) {
    super(
      `Too many attempts. Try again in ${retryAfterSeconds < 90 ? `${Math.max(1, retryAfterSeconds)} seconds` : `${Math.ceil(retryAfterSeconds / 60)} minutes`}.`,
    );
  }
}

export class ConfigError extends DomainError {
  override name = 'ConfigError';
}
