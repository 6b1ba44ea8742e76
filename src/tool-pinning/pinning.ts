/**
 * Tool definition pinning: each protected MCP server with an `upstream` and
 * `toolDefinitions.mode` other than `off` is listed at start, every `recheck`, and soon after
 * a new MCP session starts (at most once per {@link SESSION_RECHECK_MS}); each listing is
 * hashed (definitions.ts), scanned (scanner.ts) and compared with the approved snapshot.
 *
 * - The first listing is approved as it is, except the definitions the scanner flags: those
 *   are held, as any later change is (a new tool, a changed or removed one).
 * - A held change waits for an administrator (`approve` or `reject`, audited with the actor).
 *   The record is shared through the store and announced on a channel, so a decision made on
 *   one replica applies on every replica within moments (and at the next recheck at worst).
 * - `/verify` asks {@link ToolPinning.held} (synchronous, in memory) in `enforce` mode.
 *
 * Listings run in the background, one server at a time per server: a server that is down,
 * slow or answers garbage only fails its own check (visible in {@link ToolPinning.status});
 * it never delays a decision. In `enforce` mode a server never listed successfully is held
 * whole (fail closed); its last good state is kept while it is unreachable.
 */
import type { ResourceConfig } from '../config/schema.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { Logger } from '../logging/logger.js';
import type { ToolPinsGauge } from '../observability/metrics.js';
import { TOOL_PINS_CHANNEL } from '../store/keys.js';
import type { Store } from '../store/store.js';
import {
  diffSnapshots,
  snapshotOf,
  type DefinitionChange,
  type PinnedDefinition,
  type Snapshot,
} from './definitions.js';
import { fingerprintOf, PinRecords, type PendingChange, type PinRecord } from './pin-records.js';
import { contextFor, scanDefinition, type Finding } from './scanner.js';
import { ListingFailed, type Lists } from './upstream-lister.js';

/** A new session triggers a listing at most this often per server. */
export const SESSION_RECHECK_MS = 30_000;

/** What `/verify` refuses for one server in `enforce` mode. */
export interface HeldDefinitions {
  /** Never listed successfully: every list and call is held. */
  readonly unchecked: boolean;
  /** Tools whose `tools/call` is refused (new, changed or flagged). */
  readonly tools: ReadonlySet<string>;
  /** Prompts whose `prompts/get` is refused. */
  readonly prompts: ReadonlySet<string>;
  /** Whether `tools/list` is refused (any tool change, a removal included). */
  readonly toolList: boolean;
  /** Whether `prompts/list` is refused. */
  readonly promptList: boolean;
  /** Whether `resources/templates/list` is refused. */
  readonly resourceTemplates: boolean;
}

/** Lists one server (upstream-lister.ts in the service; a stand-in in unit tests). */
export type Lister = (resource: ResourceConfig) => Promise<Lists>;

export interface ToolPinningOptions {
  store: Store;
  /** The protected servers, live. */
  resources: () => readonly ResourceConfig[];
  list: Lister;
  events: SecurityEvents;
  logger: Logger;
  /** Records approvals and rejections (the audit log); optional. */
  audit?: ((kind: string, fields: Record<string, unknown>) => Promise<void>) | undefined;
  /** An external classifier's findings on a new or changed definition (classifier.ts). */
  classify?: ((resource: string, definition: PinnedDefinition) => Promise<Finding[]>) | undefined;
}

/** What the service remembers of one server between listings. */
interface ServerState {
  record: PinRecord | undefined;
  held: HeldDefinitions | undefined;
  nextCheck: number;
  running: Promise<void> | undefined;
  /** When the latest listing started (epoch ms). */
  startedAt?: number;
}

const NOTHING_HELD: HeldDefinitions = {
  unchecked: false,
  tools: new Set(),
  prompts: new Set(),
  toolList: false,
  promptList: false,
  resourceTemplates: false,
};

/** A server never listed successfully: every list and call held. */
const UNCHECKED: HeldDefinitions = { ...NOTHING_HELD, unchecked: true };

/** Whether a resource is pinned at all. */
export function pinned(resource: ResourceConfig): boolean {
  return resource.toolDefinitions.mode !== 'off' && resource.upstream !== undefined;
}

export class ToolPinning {
  private readonly records: PinRecords;
  private readonly servers = new Map<string, ServerState>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(private readonly options: ToolPinningOptions) {
    this.records = new PinRecords(options.store);
  }

  /** Subscribes to other replicas' changes and starts the schedule (first listings at once). */
  async start(): Promise<void> {
    this.unsubscribe = await this.options.store.subscribe(TOOL_PINS_CHANNEL, (resource) => {
      void this.reload(resource);
    });
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
    this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.unsubscribe?.();
    await Promise.all([...this.servers.values()].map((state) => state.running));
  }

  /** What `/verify` must refuse for `resource` (enforce mode only), or `undefined`. */
  held(resource: ResourceConfig): HeldDefinitions | undefined {
    if (resource.toolDefinitions.mode !== 'enforce' || resource.upstream === undefined) {
      return undefined;
    }
    // No record yet on this replica: never listed, so held whole (fail closed).
    return this.servers.get(resource.url)?.held ?? UNCHECKED;
  }

  /**
   * What is held for `resource` on a listing that started after this call: in `enforce` mode a
   * `tools/list` (or `prompts/list`, `resources/templates/list`) is judged on one, so a server
   * that changed its tools and told its clients (`notifications/tools/list_changed`) cannot
   * show them the change before the gateway has seen it. Calls arriving together share one
   * listing; a listing that fails leaves the last state.
   */
  async fresh(resource: ResourceConfig): Promise<HeldDefinitions | undefined> {
    const state = this.servers.get(resource.url);
    if (!state || this.held(resource) === undefined) return this.held(resource);
    const asked = Date.now();
    while ((state.startedAt ?? 0) < asked) {
      if (state.running) {
        await state.running;
        continue;
      }
      this.run(resource, state);
    }
    await state.running;
    return this.held(resource);
  }

  /** Starts a listing of `resource` (the schedule's and on-demand ones alike). */
  private run(resource: ResourceConfig, state: ServerState): void {
    state.startedAt = Date.now();
    state.running = this.check(resource).finally(() => {
      state.running = undefined;
    });
  }

  /** A new MCP session started on `resource`: list it again soon (rate-limited). */
  sessionStarted(url: string): void {
    const state = this.servers.get(url);
    if (!state) return;
    const last = state.record?.lastCheck?.at ?? 0;
    if (Date.now() - last >= SESSION_RECHECK_MS) state.nextCheck = 0;
  }

  /** Every pinned server's state as this replica knows it (the metrics' gauges). */
  gauges(): ToolPinsGauge[] {
    const modes = new Map(this.options.resources().map((entry) => [entry.url, entry]));
    return [...this.servers].map(([url, state]) => {
      const record = state.record;
      const lastGood = record?.lastListedAt;
      return {
        resource: url,
        mode: modes.get(url)?.toolDefinitions.mode ?? 'off',
        held: record?.pending?.changes.length ?? 0,
        failing: record?.lastCheck?.ok === false,
        listedAgeSeconds: lastGood === undefined ? undefined : (Date.now() - lastGood) / 1000,
      };
    });
  }

  /** The shared record of a server (CLI, admin console, diagnostics). */
  status(url: string): Promise<PinRecord | undefined> {
    return this.records.read(url);
  }

  /** Lists `url` now and waits for the result (tests). */
  async checkNow(url: string): Promise<PinRecord | undefined> {
    const resource = this.options.resources().find((entry) => entry.url === url);
    if (!resource || !pinned(resource)) return undefined;
    await this.check(resource);
    return this.servers.get(url)?.record;
  }

  /** Approves the held change of `url` (the one with `fingerprint`, when given). */
  approve(url: string, actor: string, fingerprint?: string): Promise<PinRecord> {
    return this.decide(
      url,
      actor,
      fingerprint,
      'tool_definitions_approved',
      (current, pending) => ({
        ...current,
        approved: pending.snapshot,
        approvedAt: Date.now(),
        approvedBy: actor,
        pending: null,
      }),
    );
  }

  /** Rejects the held change of `url`: its definitions stay refused until the server reverts. */
  reject(url: string, actor: string, fingerprint?: string): Promise<PinRecord> {
    return this.decide(
      url,
      actor,
      fingerprint,
      'tool_definitions_rejected',
      (current, pending) => ({
        ...current,
        pending: { ...pending, status: 'rejected', decidedBy: actor },
      }),
    );
  }

  /**
   * An administrator's decision on the held change of `url`: refused (PinningError) when none
   * is held or it is not the one shown (`fingerprint`); recorded, audited and announced.
   */
  private async decide(
    url: string,
    actor: string,
    fingerprint: string | undefined,
    kind: string,
    apply: (current: PinRecord, pending: PendingChange) => PinRecord,
  ): Promise<PinRecord> {
    let decided: PendingChange | undefined;
    const record = await this.records.update(url, (current) => {
      const pending = current.pending;
      if (!pending) throw new PinningError('nothing is waiting for approval');
      if (fingerprint && pending.fingerprint !== fingerprint) {
        throw new PinningError('the definitions changed again since they were shown');
      }
      decided = pending;
      return apply(current, pending);
    });
    await this.decided(url, record, kind, actor, decided!);
    return record;
  }

  private async decided(
    url: string,
    record: PinRecord,
    kind: string,
    actor: string,
    change: PendingChange,
  ): Promise<void> {
    this.remember(url, record);
    await this.options.audit?.(kind, {
      resource: url,
      actor,
      fingerprint: change.fingerprint,
      changes: change.changes.map((entry) => `${entry.change} ${entry.key}`),
    });
    await this.options.store.publish(TOOL_PINS_CHANNEL, url);
  }

  /** Starts the listings that are due; never waits for one. */
  private tick(): void {
    const now = Date.now();
    const current = new Set<string>();
    for (const resource of this.options.resources()) {
      if (!pinned(resource)) continue;
      current.add(resource.url);
      let state = this.servers.get(resource.url);
      if (!state) {
        state = { record: undefined, held: undefined, nextCheck: 0, running: undefined };
        this.servers.set(resource.url, state);
      }
      if (state.running || state.nextCheck > now) continue;
      state.nextCheck = now + resource.toolDefinitions.recheck * 1000;
      this.run(resource, state);
    }
    for (const url of this.servers.keys()) if (!current.has(url)) this.servers.delete(url);
  }

  /** Re-reads a record another replica wrote. */
  private async reload(url: string): Promise<void> {
    try {
      const record = await this.records.read(url);
      if (record) this.remember(url, record);
    } catch (error) {
      this.options.logger.warn('cannot read tool pins', { resource: url, error });
    }
  }

  /** One listing of one server, compared, recorded and announced. */
  private async check(resource: ResourceConfig): Promise<void> {
    const started = Date.now();
    let lists: Lists;
    try {
      lists = await this.options.list(resource);
    } catch (error) {
      const message =
        error instanceof ListingFailed ? error.message : `unexpected: ${(error as Error).message}`;
      this.options.logger.warn('cannot list the tool definitions of an MCP server', {
        resource: resource.url,
        error: message,
      });
      await this.recordFailure(resource.url, started, message);
      return;
    }
    const snapshot = snapshotOf(lists, started);
    try {
      const findings = await this.findingsOn(resource.url, snapshot);
      const record = await this.records.update(resource.url, (current) =>
        this.compare(current, snapshot, findings, Date.now() - started),
      );
      this.remember(resource.url, record);
      await this.options.store.publish(TOOL_PINS_CHANNEL, resource.url);
    } catch (error) {
      this.options.logger.error('cannot record the tool definitions of an MCP server', {
        resource: resource.url,
        error,
      });
    }
  }

  private async recordFailure(url: string, started: number, error: string): Promise<void> {
    const lastCheck = { at: started, ok: false, error, durationMs: Date.now() - started };
    try {
      const record = await this.records.update(url, (current) => ({ ...current, lastCheck }));
      this.remember(url, record);
    } catch (writeError) {
      this.options.logger.warn('cannot record a failed listing', { resource: url, writeError });
    }
  }

  /**
   * The scanner's findings on every definition, and the external classifier's on those not
   * approved as they are (asked once per definition hash).
   */
  private async findingsOn(url: string, snapshot: Snapshot): Promise<Record<string, Finding[]>> {
    const findings = this.scan(url, snapshot);
    const { classify } = this.options;
    if (!classify) return findings;
    const approved = this.servers.get(url)?.record?.approved?.definitions ?? {};
    for (const [key, definition] of Object.entries(snapshot.definitions)) {
      if (approved[key]?.hash === definition.hash) continue;
      const classified = await classify(url, definition);
      if (classified.length > 0) findings[key] = [...(findings[key] ?? []), ...classified];
    }
    return findings;
  }

  /** The record after `snapshot` was listed: approved, unchanged, or a change to hold. */
  private compare(
    current: PinRecord,
    snapshot: Snapshot,
    findings: Record<string, Finding[]>,
    durationMs: number,
  ): PinRecord {
    const url = current.resource;
    const lastCheck = { at: snapshot.takenAt, ok: true, durationMs };
    current = { ...current, lastListedAt: snapshot.takenAt };
    const baseline = current.approved ?? withoutFlagged(snapshot, findings);
    const changes = diffSnapshots(baseline, snapshot);
    const fingerprint = fingerprintOf(snapshot);
    if (changes.length === 0) {
      return { ...current, approved: baseline, lastCheck, pending: null };
    }
    if (current.pending?.fingerprint === fingerprint) {
      return { ...current, approved: baseline, lastCheck };
    }
    const held = new Set(changes.map((change) => change.key));
    const pending: PendingChange = {
      snapshot,
      fingerprint,
      changes,
      findings: Object.fromEntries(Object.entries(findings).filter(([key]) => held.has(key))),
      detectedAt: snapshot.takenAt,
      status: 'review',
    };
    this.announce(url, pending);
    return {
      ...current,
      approved: baseline,
      ...(current.approved ? {} : { approvedAt: snapshot.takenAt, approvedBy: 'first listing' }),
      lastCheck,
      pending,
    };
  }

  /** The scanner's findings per definition key (only keys with findings). */
  private scan(url: string, snapshot: Snapshot): Record<string, Finding[]> {
    const others = new Set<string>();
    for (const [otherUrl, state] of this.servers) {
      if (otherUrl === url) continue;
      for (const shown of [state.record?.approved, state.record?.pending?.snapshot]) {
        for (const definition of Object.values(shown?.definitions ?? {})) {
          if (definition.kind === 'tool') others.add(definition.name);
        }
      }
    }
    const definitions = Object.values(snapshot.definitions);
    const context = contextFor(definitions, others);
    const out: Record<string, Finding[]> = {};
    for (const [key, definition] of Object.entries(snapshot.definitions)) {
      const found = scanDefinition(definition, context);
      if (found.length > 0) out[key] = found;
    }
    return out;
  }

  /** Security events for a change newly held. */
  private announce(url: string, pending: PendingChange): void {
    const { events } = this.options;
    const count = (kind: DefinitionChange['change']) =>
      pending.changes.filter((change) => change.change === kind).length;
    events.emit('tool_definition_changed', {
      resource: url,
      added: count('added'),
      changed: count('changed'),
      removed: count('removed'),
      definitions: pending.changes.slice(0, 20).map((change) => `${change.change} ${change.key}`),
    });
    for (const [key, found] of Object.entries(pending.findings)) {
      const rules = [...new Set(found.map((finding) => finding.rule))];
      events.emit('tool_definition_flagged', { resource: url, definition: key, rules });
      if (rules.includes('name-collision')) {
        events.emit('tool_shadowing', { resource: url, definition: key });
      }
    }
  }

  /** Keeps a record in memory and derives what `/verify` refuses from it. */
  private remember(url: string, record: PinRecord): void {
    let state = this.servers.get(url);
    if (!state) {
      state = { record: undefined, held: undefined, nextCheck: 0, running: undefined };
      this.servers.set(url, state);
    }
    state.record = record;
    state.held = heldBy(record);
  }
}

/** Raised by approve/reject when the request does not fit the record (a 409 for callers). */
export class PinningError extends Error {}

/** The snapshot without its flagged definitions: the part of a first listing approved as is. */
function withoutFlagged(snapshot: Snapshot, findings: Record<string, Finding[]>): Snapshot {
  const definitions: Record<string, PinnedDefinition> = {};
  for (const [key, definition] of Object.entries(snapshot.definitions)) {
    if (!findings[key]) definitions[key] = definition;
  }
  return { takenAt: snapshot.takenAt, definitions };
}

/**
 * What a record holds back: every added or changed definition of its pending change, and the
 * lists that would show the change (a removal included).
 */
function heldBy(record: PinRecord): HeldDefinitions {
  if (!record.pending) {
    return record.approved || record.lastCheck?.ok ? NOTHING_HELD : UNCHECKED;
  }
  const tools = new Set<string>();
  const prompts = new Set<string>();
  let toolList = false;
  let promptList = false;
  let resourceTemplates = false;
  for (const change of record.pending.changes) {
    if (change.kind === 'tool') toolList = true;
    else if (change.kind === 'prompt') promptList = true;
    else resourceTemplates = true;
    if (change.change === 'removed') continue;
    if (change.kind === 'tool') tools.add(change.name);
    else if (change.kind === 'prompt') prompts.add(change.name);
  }
  return { unchecked: false, tools, prompts, toolList, promptList, resourceTemplates };
}
