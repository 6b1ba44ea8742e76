/**
 * The typed oidc-provider events (src/events/provider-events.ts): every event name the
 * gateway listens to is one oidc-provider actually emits (read from its sources: a misspelt
 * name would compile against the map and silently never fire), and a listener gets the
 * emitted arguments as they were emitted.
 */
import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import {
  onProviderEvent,
  PROVIDER_EVENT_NAMES,
  type OAuthEventContext,
  type OAuthEventError,
} from '../../../src/events/provider-events.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const lib = path.join(root, 'node_modules/oidc-provider/lib');

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return sourcesUnder(full);
    return entry.endsWith('.js') ? [readFileSync(full, 'utf8')] : [];
  });
}

const sources = sourcesUnder(lib).join('\n');

/**
 * Whether oidc-provider emits `name`: named literally at an `emit(…)` or an endpoint's error
 * handler (`error('grant.error')`), or a model event, which the base model emits as
 * `<model in snake_case>.<event>` (`grant.saved`).
 */
function emitted(name: string): boolean {
  const quoted = `'${name}'`;
  if (sources.includes(`emit(${quoted}`) || sources.includes(`error(${quoted})`)) return true;
  const model = /^([a-z_]+)\.(saved|destroyed|consumed|issued)$/.exec(name);
  if (model === null) return false;
  return (
    readdirSync(path.join(lib, 'models')).includes(`${model[1]}.js`) &&
    sources.includes(`emit('${model[2]}')`)
  );
}

describe('provider events', () => {
  it('names only events oidc-provider emits', () => {
    expect(PROVIDER_EVENT_NAMES.length).toBeGreaterThan(0);
    expect(PROVIDER_EVENT_NAMES.filter((name) => !emitted(name))).toEqual([]);
  });

  it('would notice a name oidc-provider does not emit', () => {
    expect(emitted('grant.succeeded')).toBe(false);
    expect(emitted('registration.success')).toBe(false);
    expect(emitted('grants.saved')).toBe(false);
  });

  it('hands each listener the arguments as emitted', () => {
    const provider = new EventEmitter();
    const seen: unknown[][] = [];
    onProviderEvent(provider, 'grant.error', (ctx, error) => seen.push([ctx, error]));
    onProviderEvent(provider, 'grant.revoked', (ctx, grantId) => seen.push([ctx, grantId]));
    const ctx: OAuthEventContext = { ip: '192.0.2.1', oidc: { client: { clientId: 'c1' } } };
    const error: OAuthEventError = Object.assign(new Error('invalid_grant'), {
      error: 'invalid_grant',
      error_detail: 'grant already used',
    });
    provider.emit('grant.error', ctx, error);
    provider.emit('grant.revoked', ctx, 'grant-1');
    provider.emit('grant.success', ctx);
    expect(seen).toEqual([
      [ctx, error],
      [ctx, 'grant-1'],
    ]);
    expect(seen[0]![0]).toBe(ctx);
  });
});
