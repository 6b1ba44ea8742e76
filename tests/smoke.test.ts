import { describe, expect, it } from '@jest/globals';
import Provider from 'oidc-provider';
import * as jose from 'jose';
import * as client from 'openid-client';
describe('esm', () => {
  it('loads', () => {
    expect(typeof Provider).toBe('function');
    expect(typeof jose.jwtVerify).toBe('function');
    expect(typeof client.discovery).toBe('function');
  });
});
