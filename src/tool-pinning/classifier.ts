/**
 * An optional external classifier of tool definitions (`toolPinning.classifier`), asked beside
 * the built-in scanner about each new or changed definition: an HTTP service the operator runs
 * (a model, a vendor's scanner). It is asked once per definition hash; answers are remembered.
 *
 * Request: `POST <url>` with `{ resource, kind, name, definition }`. Answer: `{ "flagged":
 * boolean, "reason"?: string }`. A flag becomes a finding of rule `classifier`. Anything else
 * (timeout, error status, another shape) is decided by `failPolicy`: `flag` holds the
 * definition (fail closed), `pass` leaves it to the scanner.
 */
import type { Logger } from '../logging/logger.js';
import { cappedFetch } from '../net/capped-fetch.js';
import type { PinnedDefinition } from './definitions.js';
import { visible, type Finding } from './scanner.js';

export interface ClassifierSettings {
  url: string;
  timeoutMs: number;
  failPolicy: 'flag' | 'pass';
  /** `Authorization` to send, when configured. */
  authorization?: string | undefined;
}

/** Answers remembered, by definition hash; the oldest go first past this many. */
const REMEMBERED = 10_000;
/** The most of an answer read. */
const MAX_ANSWER = 64 * 1024;

export class ExternalClassifier {
  private readonly answers = new Map<string, Finding[]>();

  constructor(
    private readonly settings: ClassifierSettings,
    private readonly logger: Logger,
  ) {}

  /** The classifier's findings on one definition (empty when it passed). */
  async findings(resource: string, definition: PinnedDefinition): Promise<Finding[]> {
    const known = this.answers.get(definition.hash);
    if (known) return known;
    let found: Finding[];
    try {
      found = await this.ask(resource, definition);
    } catch (error) {
      const message = (error as Error).message;
      this.logger.warn('the tool definition classifier could not judge a definition', {
        resource,
        definition: `${definition.kind}:${definition.name}`,
        error: message,
      });
      // Not remembered: the next listing asks again.
      return this.settings.failPolicy === 'flag'
        ? [
            {
              rule: 'classifier',
              where: 'definition',
              excerpt: `classifier unavailable: ${message}`,
            },
          ]
        : [];
    }
    this.answers.set(definition.hash, found);
    if (this.answers.size > REMEMBERED) this.answers.delete(this.answers.keys().next().value!);
    return found;
  }

  private async ask(resource: string, definition: PinnedDefinition): Promise<Finding[]> {
    const response = await cappedFetch(MAX_ANSWER)(this.settings.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.settings.authorization ? { authorization: this.settings.authorization } : {}),
      },
      body: JSON.stringify({
        resource,
        kind: definition.kind,
        name: definition.name,
        definition: definition.definition,
      }),
      redirect: 'error',
      signal: AbortSignal.timeout(this.settings.timeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`status ${response.status}`);
    }
    const text = await response.text();
    const answer = JSON.parse(text) as { flagged?: unknown; reason?: unknown };
    if (typeof answer.flagged !== 'boolean') throw new Error('no boolean "flagged" in the answer');
    if (!answer.flagged) return [];
    const reason = typeof answer.reason === 'string' ? answer.reason : 'flagged';
    return [{ rule: 'classifier', where: 'definition', excerpt: visible(reason) }];
  }
}
