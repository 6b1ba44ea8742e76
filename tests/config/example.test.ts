import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config/load.js';

describe('gateway.example.yaml', () => {
  it('is a valid configuration', () => {
    const { config } = loadConfig('gateway.example.yaml', {
      ENTRA_CLIENT_ID: 'id',
      ENTRA_CLIENT_SECRET: 'secret',
      INTERNAL_AGENT_SECRET: 'a-secret-of-at-least-16-characters',
    });
    expect(config.store.redis?.url).toBe('redis://redis:6379/0');
    expect(config.login.oidc[0]?.clientSecret).toBe('secret');
    expect(config.resources.map((resource) => resource.url)).toContain(
      'https://mcp.example.com/mcp',
    );
  });
});
