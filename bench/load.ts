/**
 * One autocannon run (programmatic API) and what the benchmark reports about it.
 *
 * Latency percentiles come from autocannon's per-response `responseTime` (fractional
 * milliseconds) rather than its result histogram, which counts whole milliseconds: on loopback
 * most answers take one or two, and a p99 ratio of whole milliseconds says little.
 */
import autocannon from 'autocannon';

export const CONNECTIONS = 50;
export const PIPELINING = 1;

export interface LoadOptions {
  url: string;
  headers?: Record<string, string>;
  /** GET unless given. */
  method?: 'GET' | 'POST';
  body?: string;
  /** The only status counted as success. */
  expected: number;
  /** Seconds; ignored when `amount` is given. */
  duration?: number;
  /** A fixed number of requests instead of a duration. */
  amount?: number;
  /** Per-request rewrite (e.g. the next token of a rotation). */
  setupRequest?: (request: autocannon.Request) => autocannon.Request;
}

export interface Measurement {
  requests: number;
  /** From the start of the run to its last answer. */
  seconds: number;
  /** Completed requests / seconds. */
  rps: number;
  p50: number;
  p99: number;
  /** Status code → count. */
  statuses: Record<string, number>;
  /** Connection errors and timeouts. */
  connectionErrors: number;
  /** Answers with another status than `expected`, plus connection errors. */
  errors: number;
}

class Latencies {
  private values = new Float64Array(1 << 18);
  private size = 0;

  add(value: number): void {
    if (this.size === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.size++] = value;
  }

  percentiles(...ps: number[]): number[] {
    const sorted = this.values.slice(0, this.size).sort();
    return ps.map((p) =>
      this.size === 0
        ? NaN
        : sorted[Math.min(this.size - 1, Math.ceil((p / 100) * this.size) - 1)]!,
    );
  }
}

/**
 * Runs autocannon once. Requests per second are computed here, answers over the time from the
 * start to the last answer: autocannon's own `duration` ends at its next one-second tick, which
 * for a fixed `amount` can add most of a second.
 */
export function runLoad(options: LoadOptions): Promise<Measurement> {
  const latencies = new Latencies();
  let lastAnswer = 0;
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const instance = autocannon(
      {
        url: options.url,
        connections: CONNECTIONS,
        pipelining: PIPELINING,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ...(options.body === undefined ? {} : { body: options.body }),
        ...(options.amount ? { amount: options.amount } : { duration: options.duration ?? 10 }),
        ...(options.setupRequest ? { requests: [{ setupRequest: options.setupRequest }] } : {}),
      },
      (error, result) => {
        if (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        const statuses: Record<string, number> = {};
        for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) {
          statuses[code] = stats.count ?? 0;
        }
        const unexpected = Object.entries(statuses)
          .filter(([code]) => Number(code) !== options.expected)
          .reduce((sum, [, count]) => sum + count, 0);
        const [p50, p99] = latencies.percentiles(50, 99);
        const seconds = (lastAnswer - start) / 1000;
        resolve({
          requests: result.requests.total,
          seconds,
          rps: result.requests.total / seconds,
          p50: p50!,
          p99: p99!,
          statuses,
          connectionErrors: result.errors,
          errors: unexpected + result.errors,
        });
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => {
      latencies.add(responseTime);
      lastAnswer = performance.now();
    });
  });
}

/**
 * Cycles through `tokens`, one per request, across all connections (the counter is shared):
 * consecutive requests carry consecutive tokens.
 */
export class TokenRotation {
  private next = 0;
  /** How many requests were built (one per request sent). */
  used = 0;

  constructor(private readonly tokens: string[]) {}

  readonly setupRequest = (request: autocannon.Request): autocannon.Request => {
    const token = this.tokens[this.next]!;
    this.next = this.next + 1 === this.tokens.length ? 0 : this.next + 1;
    this.used++;
    // autocannon hands over a fresh copy of the default headers for every request.
    (request.headers ??= {}).authorization = `Bearer ${token}`;
    return request;
  };
}
