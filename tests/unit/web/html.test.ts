/**
 * The page primitives (src/web/): every interpolated value is escaped unless it is markup the
 * code built, and the shared pages escape what a client or a request supplied.
 */
import { describe, expect, it } from '@jest/globals';
import { renderErrorPage, returnToClient } from '../../../src/web/error-page.js';
import { html, SafeHtml } from '../../../src/web/html.js';
import { page } from '../../../src/web/layout.js';
import { sendPage } from '../../../src/web/send-page.js';
import { responseDouble } from './express-test-doubles.js';

const HOSTILE = `<script>alert("x")</script>&'`;
const ESCAPED = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;';

describe('html', () => {
  it('escapes every interpolated string and number', () => {
    expect(html`<p title="${HOSTILE}">${HOSTILE} ${42}</p>`.value).toBe(
      `<p title="${ESCAPED}">${ESCAPED} 42</p>`,
    );
  });

  it('inserts SafeHtml as it is, joins arrays, and drops null and undefined', () => {
    // Another name for the tag: Prettier would reformat markup in an `html` template.
    const markup = html;
    const items = ['a<b', 'c'].map((item) => markup`<li>${item}</li>`);
    const rest = [null, undefined, new SafeHtml('<br>')];
    expect(markup`<ul>${items}</ul>${rest}`.value).toBe('<ul><li>a&lt;b</li><li>c</li></ul><br>');
  });

  it('escapes nested templates once', () => {
    const inner = html`<em>${'&'}</em>`;
    expect(html`<p>${inner}</p>`.value).toBe('<p><em>&amp;</em></p>');
  });
});

describe('shared pages', () => {
  it('escapes the title of the layout', () => {
    const rendered = page(HOSTILE, html`<p>body</p>`);
    expect(rendered).toContain(`<title>${ESCAPED} · MCP Gateway</title>`);
    expect(rendered).not.toContain('<script>');
  });

  it('escapes what the error page is given, and the link back to the client', () => {
    const rendered = renderErrorPage({
      title: 'Sign-in failed',
      error: HOSTILE,
      description: HOSTILE,
      returnTo: {
        url: 'https://app.example/cb?error=access_denied&state="x"',
        clientName: HOSTILE,
      },
    });
    expect(rendered).not.toContain('<script>');
    expect(rendered).toContain(`<strong>${ESCAPED}</strong>: ${ESCAPED}`);
    expect(rendered).toContain(
      'href="https://app.example/cb?error=access_denied&amp;state=&quot;x&quot;"',
    );
    expect(returnToClient(undefined)).toBe('');
  });

  it('sends pages with the headers that forbid framing, caching and script', () => {
    const { res, sent } = responseDouble();
    sendPage(res, 403, '<p>no</p>');
    expect(sent).toEqual({
      status: 403,
      body: '<p>no</p>',
      headers: {
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'Content-Security-Policy':
          "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        'X-Frame-Options': 'DENY',
        'Referrer-Policy': 'no-referrer',
        'X-Content-Type-Options': 'nosniff',
      },
    });
  });
});
