/**
 * Packet captures for the tunnel tests: tcpdump (Debian) writing a pcap file inside a network
 * namespace, and a reader of the classic pcap format that says what each frame carried, so a
 * test can check that the underlay saw nothing but WireGuard's UDP.
 */
import { readFile } from 'node:fs/promises';
import type { NetnsLab } from './netns.js';
import { waitFor } from './netns.js';

export interface Capture {
  file: string;
  /**
   * The packets written so far (tcpdump -U writes each one whole), or `undefined` while the
   * file is not readable as pcap yet: for waiting until the capture holds what was sent.
   */
  packets(): Promise<Buffer[] | undefined>;
  /** Stops tcpdump (it flushes on SIGTERM) and returns the pcap file's bytes. */
  stop(): Promise<Buffer>;
}

/** Starts tcpdump on `iface` inside `ns`; resolves once it reports that it is listening. */
export async function startCapture(
  lab: NetnsLab,
  ns: string,
  iface: string,
  file: string,
): Promise<Capture> {
  // -p: not promiscuous (the capture must not change what the interface receives);
  // --immediate-mode and -U: each packet handed over and written at once (otherwise libpcap
  // delivers them in blocks, and a capture stopped within a second can miss them all);
  // -s 0: whole packets; -n: no name lookups; -Z root: keep writing as root (Debian's tcpdump
  // otherwise switches to its own user, who cannot write into the test's private directory).
  const tcpdump = lab.spawn(ns, 'tcpdump', [
    '-i',
    iface,
    '-p',
    '--immediate-mode',
    '-U',
    '-n',
    '-s',
    '0',
    '-Z',
    'root',
    '-w',
    file,
  ]);
  await waitFor(
    () => /listening on/.test(tcpdump.output()) || tcpdump.exitInfo() !== undefined,
    10_000,
    `tcpdump on ${iface} in ${ns}`,
  );
  if (tcpdump.exitInfo() !== undefined) {
    throw new Error(`tcpdump ${tcpdump.exitInfo()}: ${tcpdump.output()}`);
  }
  return {
    file,
    async packets() {
      try {
        return parsePcap(await readFile(file)).packets;
      } catch {
        return undefined;
      }
    },
    async stop() {
      await tcpdump.stop(5_000);
      return readFile(file);
    },
  };
}

export interface Frame {
  /** The link-layer payload's protocol: `ipv4`, `arp`, `ipv6` or `0x....`. */
  kind: string;
  /** IPv4 only. */
  protocol?: number;
  source?: string;
  destination?: string;
  sourcePort?: number;
  destinationPort?: number;
}

export interface Pcap {
  /** LINKTYPE_ETHERNET (1), LINKTYPE_RAW (101), … */
  linkType: number;
  packets: Buffer[];
}

/** Reads a classic pcap file (either byte order, micro- or nanosecond timestamps). */
export function parsePcap(bytes: Buffer): Pcap {
  if (bytes.length < 24) throw new Error('not a pcap file: too short');
  const magic = bytes.readUInt32LE(0);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const big = bytes.readUInt32BE(0) === 0xa1b2c3d4 || bytes.readUInt32BE(0) === 0xa1b23c4d;
  if (!little && !big) throw new Error('not a pcap file: bad magic number');
  const u32 = (offset: number) =>
    little ? bytes.readUInt32LE(offset) : bytes.readUInt32BE(offset);
  const linkType = u32(20);
  const packets: Buffer[] = [];
  let offset = 24;
  while (offset + 16 <= bytes.length) {
    const length = u32(offset + 8);
    const start = offset + 16;
    if (start + length > bytes.length) throw new Error('pcap file ends inside a packet');
    packets.push(bytes.subarray(start, start + length));
    offset = start + length;
  }
  return { linkType, packets };
}

/** What an Ethernet frame carried (IPv4 headers decoded). */
export function describeEthernetFrame(frame: Buffer): Frame {
  const etherType = frame.readUInt16BE(12);
  if (etherType === 0x0806) return { kind: 'arp' };
  if (etherType === 0x86dd) return { kind: 'ipv6' };
  if (etherType !== 0x0800) return { kind: `0x${etherType.toString(16).padStart(4, '0')}` };
  const ip = frame.subarray(14);
  const headerLength = (ip[0]! & 0x0f) * 4;
  const protocol = ip[9]!;
  const address = (at: number) => [...ip.subarray(at, at + 4)].join('.');
  const frameInfo: Frame = {
    kind: 'ipv4',
    protocol,
    source: address(12),
    destination: address(16),
  };
  if (protocol === 6 || protocol === 17) {
    frameInfo.sourcePort = ip.readUInt16BE(headerLength);
    frameInfo.destinationPort = ip.readUInt16BE(headerLength + 2);
  }
  return frameInfo;
}
