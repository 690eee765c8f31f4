import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

/**
 * A WebAuthn authenticator in software, for tests and benchmarks that cannot drive a browser:
 * it makes real P-256 keys, real authenticator data and real ES256 signatures, exactly as a
 * platform authenticator with a resident key and user verification would (attestation
 * "none"). Every field can be bent to test what the server refuses: the origin or RP id the
 * browser would report, the flags, the challenge answered, the counter.
 */
export interface CreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string; displayName: string };
}

export interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: { id: string }[];
}

interface Credential {
  id: Buffer;
  key: KeyObject;
  /** The public key as COSE_Key, as a server stores it. */
  publicKey: Uint8Array;
  userHandle: Buffer;
  rpId: string;
  counter: number;
}

export interface Bend {
  origin?: string;
  rpId?: string;
  /** Answer this challenge instead of the one in the options. */
  challenge?: string;
  /** Without user verification (only user presence). */
  unverified?: boolean;
  /** Use this credential (its id) whatever the options allow. */
  credentialId?: string;
  /** Report this user handle instead of the credential's. */
  userHandle?: string;
  /** Report this signature counter (and keep counting from it). */
  counter?: number;
}

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

function counterBytes(counter: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(counter);
  return bytes;
}

/** The COSE_Key (RFC 9053) of a P-256 public key, for ES256. */
function coseKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return isoCBOR.encode(
    new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))],
    ]),
  );
}

export class SoftwareAuthenticator {
  readonly credentials: Credential[] = [];

  constructor(
    private readonly origin: string,
    private readonly options: { synced?: boolean } = {},
  ) {}

  private flags(bend: Bend, extra = 0): number {
    const backup = this.options.synced ? FLAG_BE | FLAG_BS : 0;
    return FLAG_UP | (bend.unverified ? 0 : FLAG_UV) | backup | extra;
  }

  private clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, bend: Bend): Buffer {
    return Buffer.from(
      JSON.stringify({ type, challenge: bend.challenge ?? challenge, origin: bend.origin ?? this.origin, crossOrigin: false }),
    );
  }

  /** navigator.credentials.create, as SimpleWebAuthn's browser library reports it. */
  register(options: CreationOptions, bend: Bend = {}) {
    const rpId = bend.rpId ?? options.rp.id ?? new URL(this.origin).hostname;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const id = randomBytes(32);
    const cose = coseKey(publicKey);
    const credential = {
      id,
      key: privateKey,
      publicKey: cose,
      userHandle: Buffer.from(options.user.id, 'base64url'),
      rpId,
      counter: bend.counter ?? 0,
    };
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([this.flags(bend, FLAG_AT)]),
      counterBytes(credential.counter),
      Buffer.alloc(16),
      idLength,
      id,
      cose,
    ]);
    const statement: Map<string, string | Uint8Array | Map<string, string>> = new Map();
    statement.set('fmt', 'none');
    statement.set('attStmt', new Map());
    statement.set('authData', new Uint8Array(authData));
    const attestationObject = isoCBOR.encode(statement);
    this.credentials.push(credential);
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: 'public-key' as const,
      response: {
        clientDataJSON: b64url(this.clientData('webauthn.create', options.challenge, bend)),
        attestationObject: b64url(attestationObject),
        transports: ['internal' as const],
      },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    };
  }

  /** navigator.credentials.get, as SimpleWebAuthn's browser library reports it. */
  authenticate(options: RequestOptions, bend: Bend = {}) {
    const allowed = options.allowCredentials?.map((entry) => entry.id);
    const wanted = bend.credentialId;
    const credential = this.credentials.find((candidate) =>
      wanted ? b64url(candidate.id) === wanted : !allowed?.length || allowed.includes(b64url(candidate.id)),
    );
    if (!credential) throw new Error('no credential for this request');
    credential.counter = bend.counter ?? credential.counter + 1;
    const rpId = bend.rpId ?? options.rpId ?? credential.rpId;
    const authData = Buffer.concat([sha256(rpId), Buffer.from([this.flags(bend)]), counterBytes(credential.counter)]);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, bend);
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), credential.key);
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key' as const,
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        userHandle: bend.userHandle ?? b64url(credential.userHandle),
      },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    };
  }
}
