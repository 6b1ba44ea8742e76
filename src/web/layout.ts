/**
 * The frame every page of the gateway shares (login, consent, errors, `/account`, `/admin`):
 * one style sheet inline (the pages' Content-Security-Policy allows no other), no script.
 */
import { html, SafeHtml } from './html.js';

const STYLE = `
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2433;margin:0}
main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:10px;padding:2rem 2.25rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin:0 0 1rem}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.4rem 1rem;margin:1rem 0}
dt{font-weight:600;color:#4a5468}dd{margin:0;min-width:0;overflow-wrap:break-word}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.6rem .9rem;margin:1rem 0}
.error{background:#fdecec;border-left:4px solid #d33;padding:.6rem .9rem;margin:1rem 0}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}
button,.button{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #c5cad5;background:#fff;cursor:pointer;text-decoration:none;color:inherit;display:inline-block}
button.primary{background:#2457d6;border-color:#2457d6;color:#fff}
ul.choices{list-style:none;padding:0}ul.choices li{margin:.5rem 0}
code{background:#f0f2f5;padding:.05rem .3rem;border-radius:4px}
.nowrap{white-space:nowrap}
footer{color:#6b7385;font-size:.8rem;margin-top:1.5rem}
`;

/**
 * A table of the admin and account pages: headings, rows, and one full-width row saying so
 * when there are none (`empty` omitted: nothing). In a box of its own that scrolls sideways on
 * a narrow screen instead of widening the page.
 */
export function dataTable(
  headings: (string | { text: string; title: string })[],
  rows: SafeHtml[],
  empty?: string,
): SafeHtml {
  const body =
    rows.length > 0 || empty === undefined
      ? rows
      : html`<tr>
          <td colspan="${headings.length}">${empty}</td>
        </tr>`;
  return html`<div class="scroll">
    <table>
      <thead>
        <tr>
          ${headings.map((heading) =>
            typeof heading === 'string'
              ? html`<th>${heading}</th>`
              : html`<th title="${heading.title}">${heading.text}</th>`,
          )}
        </tr>
      </thead>
      <tbody>
        ${body}
      </tbody>
    </table>
  </div>`;
}

/** A whole page: `title` in the tab, `body` in the one centred box, the footer. */
export function page(title: string, body: SafeHtml): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>${title} · MCP Gateway</title>
        <style>
          ${new SafeHtml(STYLE)}
        </style>
      </head>
      <body>
        <main>
          ${body}
          <footer>MCP Gateway</footer>
        </main>
      </body>
    </html>`.value;
}
