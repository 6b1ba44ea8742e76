/**
 * The admin Activity page's feed view as tests read it, and the forwardAuth subrequests that
 * fill it (tests/admin/activity-*.test.ts).
 */
import { openSignedIn } from './admin-console.js';
import type { FlowResult, TestUserAgent } from './user-agent.js';

function decode(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** The cells of a row, by class, in page order. */
const CELLS = 'time result count what reason resource subject email client tool ip'.split(' ');

/**
 * The feed's rows as listed (cell texts decoded, without the line-break hints long values
 * carry: src/web/breakable.ts), in page order.
 */
export function feedRows(body: string): Record<string, string>[] {
  const html = body.replace(/<wbr>/g, '');
  return [...html.matchAll(/<tr class="event" data-result="([^"]*)">([\s\S]*?)<\/tr>/g)].map(
    (match) => {
      const row: Record<string, string> = { data: match[1]! };
      for (const cell of CELLS) {
        const found = new RegExp(`<td class="${cell}">([\\s\\S]*?)</td>`).exec(match[2]!);
        row[cell] = decode(found?.[1]?.trim() ?? '');
        if (cell === 'tool') row.rawTool = found?.[1] ?? '';
      }
      return row;
    },
  );
}

/** Signs `agent` in as `user` (dev login) when the page asks, and opens `path`. */
export const openPage = (
  gatewayUrl: string,
  agent: TestUserAgent,
  path: string,
  user: string,
): Promise<FlowResult> => openSignedIn(agent, new URL(path, gatewayUrl), user, { reopen: true });

/** A forwardAuth subrequest for `resource`, from client address `ip`. */
export async function ask(
  gatewayUrl: string,
  resource: string,
  options: { token?: string; ip: string; body?: unknown },
) {
  const url = new URL(resource);
  const response = await fetch(`${gatewayUrl}/verify`, {
    method: options.body === undefined ? 'GET' : 'POST',
    headers: {
      'x-forwarded-proto': 'http',
      'x-forwarded-host': url.host,
      'x-forwarded-uri': url.pathname,
      'x-forwarded-method': options.body === undefined ? 'GET' : 'POST',
      'x-forwarded-for': options.ip,
      ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  await response.body?.cancel();
  return response.status;
}
