/**
 * `fetch` whose response bodies fail past a size: for answers from services that are not
 * trusted to be small (an MCP server listing its tools, a classifier), so that one cannot
 * exhaust the gateway's memory. The body still streams (Server-Sent Events keep working); the
 * read that crosses the limit fails with {@link AnswerTooLarge}.
 */
export type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>;

export class AnswerTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`an answer over ${limit} bytes`);
  }
}

export function cappedFetch(limit: number, base: FetchLike = fetch): FetchLike {
  return async (url, init) => {
    const response = await base(url, init);
    if (!response.body) return response;
    let seen = 0;
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > limit) controller.error(new AnswerTooLarge(limit));
          else controller.enqueue(chunk);
        },
      }),
    );
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}
