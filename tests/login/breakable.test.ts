/**
 * Line-break hints in identifiers (src/web/breakable.ts): where `<wbr>` goes, that the
 * text is still escaped, and that short values stay whole. How it renders in Chromium is
 * measured by tests/admin/table-wrapping.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { breakable, KEEP_WHOLE, wholeDates } from '../../src/web/breakable.js';

const hints = (value: string) => breakable(value).value;

describe('breakable', () => {
  it('allows a break after each run of separators of a long identifier', () => {
    expect(hints('https://mcp.example.com/crm/v1')).toBe(
      'https://<wbr>mcp.<wbr>example.<wbr>com/<wbr>crm/<wbr>v1',
    );
    expect(hints('dev:alice@example.com')).toBe('dev:<wbr>alice@<wbr>example.<wbr>com');
    expect(hints('dcr_JsMEPvEXQbSZ8iQXuuoaRA')).toBe('dcr_<wbr>JsMEPvEXQbSZ8iQXuuoaRA');
    expect(hints('refresh_token_reuse')).toBe('refresh_<wbr>token_<wbr>reuse');
  });

  it('never after a leading or a trailing separator', () => {
    expect(hints('/var/lib/mcp-gateway/')).toBe('/var/<wbr>lib/<wbr>mcp-<wbr>gateway/');
  });

  it('keeps words of up to KEEP_WHOLE characters whole', () => {
    expect(hints('scope=mcp:tools reports:read')).toBe('scope=mcp:tools reports:read');
    expect(hints('Research agent https://agents.example.com')).toBe(
      'Research agent https://<wbr>agents.<wbr>example.<wbr>com',
    );
    expect(KEEP_WHOLE).toBe(16);
    for (const value of ['mcp:tools', 'tool_denied', '255.255.255.255', '127.0.0.1:33418']) {
      expect(hints(value)).toBe(value);
    }
    expect(hints('a'.repeat(16) + '.b')).toBe(`${'a'.repeat(16)}.<wbr>b`);
  });

  it('escapes the text around the hints, and adds no character to it', () => {
    const value = 'https://x.example/?a=<script>&b="1"';
    const rendered = hints(value);
    expect(rendered).not.toMatch(/<script/);
    expect(rendered).toBe(
      'https://<wbr>x.<wbr>example/?<wbr>a=<wbr>&lt;script&gt;&amp;<wbr>b=<wbr>&quot;1&quot;',
    );
    const text = rendered
      .replace(/<wbr>/g, '')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&');
    expect(text).toBe(value);
    expect(hints('')).toBe('');
    expect(breakable(undefined).value).toBe('');
  });

  it('keeps dates on one line (a browser breaks after the hyphens otherwise)', () => {
    expect(wholeDates('2026-05-04 13:07 UTC').value).toBe(
      '<span class="nowrap">2026-05-04</span> 13:07 UTC',
    );
    expect(wholeDates('2026-05-04T13:07:00.000Z').value).toBe(
      '<span class="nowrap">2026-05-04</span>T13:07:00.000Z',
    );
    expect(wholeDates('never <b>').value).toBe('never &lt;b&gt;');
  });
});
