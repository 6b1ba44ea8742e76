/**
 * `cappedFetch` (src/net/capped-fetch.ts): a body under the limit reads whole, with the status
 * and headers; the read that crosses it fails with AnswerTooLarge.
 */
import { describe, expect, it } from '@jest/globals';
import { AnswerTooLarge, cappedFetch } from '../../../src/net/capped-fetch.js';

/** A stand-in for the network: a response streaming `chunks` of `size` bytes each. */
function answering(chunks: number, size: number) {
  return async () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < chunks; i += 1) controller.enqueue(new Uint8Array(size).fill(97));
          controller.close();
        },
      }),
      { status: 201, headers: { 'x-test': 'yes' } },
    );
}

describe('cappedFetch', () => {
  it('passes a body under the limit, status and headers included', async () => {
    const response = await cappedFetch(1000, answering(3, 300))('http://example.test/');
    expect(response.status).toBe(201);
    expect(response.headers.get('x-test')).toBe('yes');
    expect((await response.text()).length).toBe(900);
  });

  it('fails the read that crosses the limit', async () => {
    const response = await cappedFetch(1000, answering(4, 300))('http://example.test/');
    await expect(response.text()).rejects.toBeInstanceOf(AnswerTooLarge);
  });
});
