/**
 * Reading a request body with a bound, for the two places that must see a body before they
 * pass the request on: `/verify` (the JSON-RPC body the proxy forwards) and the embedded
 * default's demo front (which forwards it to `/verify` as Traefik does).
 */
import type { IncomingMessage } from 'node:http';

/** The body (or its declared length) is over the limit: nothing more is read. */
export class BodyTooLarge extends Error {}

/** The peer hung up before the body was complete: nothing to answer, nothing wrong here. */
export class ClientGone extends Error {}

/** Whether the request declares a body (a length above 0, or chunked). */
export const hasBody = (req: IncomingMessage): boolean =>
  Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;

/** Reads the whole body, refusing more than `limit` bytes (declared or received). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', () => reject(new ClientGone()));
    req.once('aborted', () => reject(new ClientGone()));
  });
}
