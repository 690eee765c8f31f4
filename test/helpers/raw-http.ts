import { connect } from 'node:net';

export interface RawRequest {
  method: string;
  /** The request target exactly as sent: may hold bytes a well-behaved client would percent-encode. */
  target: string | Buffer;
  /** Sent in order, duplicates included; values may carry any byte (NUL, raw UTF-8). */
  headers: [string, string | Buffer][];
  body?: Buffer;
}

export interface RawResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

const CRLF = Buffer.from('\r\n');

function decodeChunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    const lineEnd = data.indexOf(CRLF, offset);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

function parseResponse(data: Buffer): RawResponse | undefined {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const [statusLine, ...lines] = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!status) return undefined;
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
  });
  let body = data.subarray(headEnd + 4);
  if (headers.some(([name, value]) => name === 'transfer-encoding' && /chunked/i.test(value))) body = decodeChunked(body);
  return { status: Number(status[1]), headers, body: body.toString('utf8') };
}

/**
 * One HTTP/1.1 request written byte for byte on a fresh TCP connection (`Connection: close`),
 * so a test can send what fetch and supertest refuse to: NUL bytes, raw Unicode in the
 * request line, duplicated headers, headers of any length. Resolves with whatever response
 * arrived; rejects only if none did.
 */
export function rawRequest(port: number, request: RawRequest, timeoutMs = 20_000): Promise<RawResponse> {
  const lines: Buffer[] = [
    Buffer.concat([Buffer.from(`${request.method} `, 'latin1'), Buffer.from(request.target), Buffer.from(' HTTP/1.1\r\n', 'latin1')]),
  ];
  const names = new Set(request.headers.map(([name]) => name.toLowerCase()));
  const headers: [string, string | Buffer][] = [...request.headers];
  if (!names.has('host')) headers.unshift(['Host', `127.0.0.1:${port}`]);
  headers.push(['Connection', 'close']);
  if (request.body && !names.has('content-length')) headers.push(['Content-Length', String(request.body.length)]);
  for (const [name, value] of headers) lines.push(Buffer.concat([Buffer.from(`${name}: `, 'latin1'), Buffer.from(value), CRLF]));
  lines.push(CRLF);
  if (request.body) lines.push(request.body);
  const payload = Buffer.concat(lines);

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1');
    const settle = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseResponse(Buffer.concat(chunks));
      if (parsed) resolve(parsed);
      else reject(error ?? new Error(`no HTTP response (${Buffer.concat(chunks).length} bytes received)`));
    };
    const timer = setTimeout(() => settle(new Error(`no complete response within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => settle());
    socket.on('error', (error) => settle(error));
    socket.on('connect', () => socket.write(payload));
  });
}
