/**
 * What every real-client test (tests/e2e/clients-*.test.ts) stands on: the Traefik stack
 * (traefik-stack.ts), the token grants the gateway makes as they happen (token-grants.ts), and
 * a Chromium for the person's steps (chromium.ts). `stop` closes all of it.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { launchChromium } from './chromium.js';
import { recordTokenGrants, type TokenGrant } from './token-grants.js';
import { startTraefikStack, type TraefikStack } from './traefik-stack.js';

export interface ClientStack extends TraefikStack {
  /** Every token grant the gateway made, in order. */
  grants: TokenGrant[];
  browser: Browser;
  /** One browser profile: the person's session, reused across authorizations. */
  context: BrowserContext;
}

export async function startClientStack(
  config: (mcpUrl: string) => Record<string, unknown>,
): Promise<ClientStack> {
  const stack = await startTraefikStack(config);
  const grants = recordTokenGrants(stack.gw.gateway);
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const context = await browser.newContext();
    const opened = browser;
    return {
      ...stack,
      grants,
      browser: opened,
      context,
      stop: async () => {
        await context.close();
        await opened.close();
        await stack.stop();
      },
    };
  } catch (error) {
    await browser?.close();
    await stack.stop();
    throw error;
  }
}
