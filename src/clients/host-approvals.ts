/**
 * Admin approval of Client ID Metadata Document hosts (`registration.cimd.requireApproval`).
 *
 * With CIMD any https URL can be a client id, so any website can appear on the consent page
 * as an MCP client. An organisation that wants to know its clients can require approval: the
 * first authorization request from a client id on a new host is refused (the user sees
 * `unauthorized_client`, "pending approval") and the host is recorded as pending; once an
 * admin approves it (CLI `mcp-gateway clients approve-host`), its client ids work. The lists
 * live in the store, so every replica (and the CLI, with Redis) sees the same ones.
 */
import { APPROVED_CIMD_HOSTS_KEY, PENDING_CIMD_HOSTS_KEY } from '../store/keys.js';
import type { Store } from '../store/store.js';

export class ClientHostApprovals {
  private readonly preApproved: Set<string>;

  constructor(
    private readonly store: Store,
    /** Hosts approved by configuration (`onlyHosts`). */
    preApproved: string[] = [],
  ) {
    this.preApproved = new Set(preApproved.map((host) => host.toLowerCase()));
  }

  /** Whether `host` is approved; when not, records it as pending (once). */
  async check(host: string): Promise<boolean> {
    const name = host.toLowerCase();
    if (this.preApproved.has(name)) return true;
    if ((await this.store.setMembers(APPROVED_CIMD_HOSTS_KEY)).includes(name)) return true;
    await this.store.addToSet(PENDING_CIMD_HOSTS_KEY, [name]);
    return false;
  }

  async approve(host: string): Promise<void> {
    const name = host.toLowerCase();
    await this.store.addToSet(APPROVED_CIMD_HOSTS_KEY, [name]);
    await this.store.removeFromSet(PENDING_CIMD_HOSTS_KEY, [name]);
  }

  async revoke(host: string): Promise<void> {
    await this.store.removeFromSet(APPROVED_CIMD_HOSTS_KEY, [host.toLowerCase()]);
  }

  pending(): Promise<string[]> {
    return this.store.setMembers(PENDING_CIMD_HOSTS_KEY).then((hosts) => hosts.sort());
  }

  approved(): Promise<string[]> {
    return this.store.setMembers(APPROVED_CIMD_HOSTS_KEY).then((hosts) => hosts.sort());
  }
}
