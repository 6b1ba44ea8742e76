/**
 * The scanner on its corpora (scripts/measure-scanner.ts, docs/tool-pinning.md): published
 * attacks flagged, real servers' definitions not. A guard against a rule change that loses
 * what was measured; the rates themselves are printed by the script.
 */
import { describe, expect, it } from '@jest/globals';
import { measure } from '../../../scripts/measure-scanner.js';

describe('the scanner on its corpora', () => {
  const result = measure();

  it('flags at least 90% of the published attacks, in both corpora', () => {
    expect(result.attacks.total).toBeGreaterThanOrEqual(60);
    expect(result.attacks.flagged / result.attacks.total).toBeGreaterThanOrEqual(0.9);
    expect(result.heldOut.total).toBeGreaterThanOrEqual(40);
    expect(result.heldOut.flagged / result.heldOut.total).toBeGreaterThanOrEqual(0.9);
  });

  it('flags none of the tricky honest definitions of the held-out corpus', () => {
    expect(result.heldOut.benign).toBe(10);
    expect(result.heldOut.falsePositives).toEqual([]);
  });

  it('flags none of the definitions real MCP servers publish', () => {
    expect(result.benign.definitions).toBeGreaterThanOrEqual(300);
    expect(result.benign.falsePositives.map((fp) => `${fp.server} ${fp.key}`)).toEqual([]);
  });
});
