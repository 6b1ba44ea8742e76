/**
 * The security event emitter (src/events/security-events.ts): sinks told in the order they
 * were added, a throwing sink skipped without breaking the caller or the sinks after it, the
 * current request's client address when the event names none, removal, and the log sink's
 * line (the one CrowdSec reads).
 */
import { describe, expect, it } from '@jest/globals';
import {
  logSink,
  loggedSecurityEvents,
  SecurityEventEmitter,
  type SecurityEventSink,
} from '../../../src/events/security-events.js';
import { withRequestId } from '../../../src/logging/logger.js';
import { captureLogger } from '../../helpers/captured-logger.js';

/** A sink that records `<name> <kind> <reason> <ip>` into `seen`. */
function recording(name: string, seen: string[]): SecurityEventSink {
  return (kind, details, ip) => seen.push(`${name} ${kind} ${String(details.reason)} ${ip}`);
}

describe('SecurityEventEmitter', () => {
  it('tells every sink, in the order they were added (constructor first)', () => {
    const seen: string[] = [];
    const events = new SecurityEventEmitter([recording('a', seen)]);
    events.addSink(recording('b', seen));
    events.addSink(recording('c', seen));
    events.emit('csrf_failed', { ip: '192.0.2.1', reason: 'no token' });
    expect(seen).toEqual([
      'a csrf_failed no token 192.0.2.1',
      'b csrf_failed no token 192.0.2.1',
      'c csrf_failed no token 192.0.2.1',
    ]);
  });

  it('skips a throwing sink: the caller and the sinks after it are unaffected', () => {
    const seen: string[] = [];
    const events = new SecurityEventEmitter();
    events.addSink(() => {
      throw new Error('sink failed');
    });
    events.addSink(recording('after', seen));
    expect(() =>
      events.emit('invalid_token', { ip: '192.0.2.2', reason: 'expired' }),
    ).not.toThrow();
    expect(seen).toEqual(['after invalid_token expired 192.0.2.2']);
  });

  it("gives sinks the event's own address, else the current request's, else none", () => {
    const seen: string[] = [];
    const events = new SecurityEventEmitter([recording('s', seen)]);
    withRequestId('req-1', () => events.emit('login_failed', { reason: 'inside' }), '198.51.100.7');
    withRequestId(
      'req-2',
      () => events.emit('login_failed', { ip: '192.0.2.3', reason: 'own' }),
      '198.51.100.8',
    );
    events.emit('login_failed', { reason: 'outside' });
    expect(seen).toEqual([
      's login_failed inside 198.51.100.7',
      's login_failed own 192.0.2.3',
      's login_failed outside undefined',
    ]);
  });

  it('stops telling a sink once removed, leaving the others (and removal twice harmless)', () => {
    const seen: string[] = [];
    const events = new SecurityEventEmitter();
    const removeFirst = events.addSink(recording('first', seen));
    events.addSink(recording('second', seen));
    events.emit('origin_refused', { ip: '192.0.2.4', reason: 'before' });
    removeFirst();
    removeFirst();
    events.emit('origin_refused', { ip: '192.0.2.4', reason: 'after' });
    expect(seen).toEqual([
      'first origin_refused before 192.0.2.4',
      'second origin_refused before 192.0.2.4',
      'second origin_refused after 192.0.2.4',
    ]);
  });

  it('keeps the events of two emitters apart (one per gateway, several per process)', () => {
    const seen: string[] = [];
    const one = new SecurityEventEmitter([recording('one', seen)]);
    const other = new SecurityEventEmitter([recording('other', seen)]);
    one.emit('tool_denied', { ip: '192.0.2.5', reason: 'here' });
    expect(seen).toEqual(['one tool_denied here 192.0.2.5']);
    other.emit('tool_denied', { ip: '192.0.2.6', reason: 'there' });
    expect(seen).toEqual(['one tool_denied here 192.0.2.5', 'other tool_denied there 192.0.2.6']);
  });
});

describe('the log sink', () => {
  it('writes one warning per event: message and security_event the kind, the details, the ip', () => {
    const captured = captureLogger();
    const events = loggedSecurityEvents(captured.logger);
    withRequestId(
      'req-3',
      () => events.emit('rate_limited', { route: '/token', keyType: 'ip', limit: 'tokenPerIp' }),
      '203.0.113.9',
    );
    expect(captured.records()).toEqual([
      expect.objectContaining({
        level: 'warn',
        message: 'rate_limited',
        security_event: 'rate_limited',
        route: '/token',
        keyType: 'ip',
        limit: 'tokenPerIp',
        ip: '203.0.113.9',
      }),
    ]);
  });

  it("applies the logger's redaction to what the caller passed", () => {
    const captured = captureLogger();
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlc2lnbmF0dXJl';
    logSink(captured.logger)('invalid_token', { reason: `bad token ${token}` }, '192.0.2.7');
    expect(captured.lines).toHaveLength(1);
    expect(captured.lines[0]).not.toContain(token);
    expect(captured.records()[0]).toMatchObject({
      security_event: 'invalid_token',
      ip: '192.0.2.7',
    });
  });
});
