/**
 * A Strand cluster for the SDK tests: `count` real `strand serve` members on 127.0.0.1, each
 * with its own temporary data directory, HTTP port (picked by the server) and QUIC port
 * (picked here: `--cluster` must name it before the member starts), the same secret and
 * admin password. Members can be killed with SIGKILL and restarted on the same ports and
 * data; `leader()` asks `GET /v1/cluster/status` who leads. Their logs are dropped unless
 * `STRAND_SDK_CLUSTER_LOGS` is set.
 */

import { createSocket } from 'node:dgram';

import { StrandProcess, sleep, waitFor } from './harness.js';

const SECRET = 'the sdk cluster tests secret, 16+ bytes';

/** One group's view in `GET /v1/cluster/status` (broker/src/cluster/status.rs). */
interface GroupStatus {
  role: string;
  leader: number | null;
  applied_index: number | null;
}

interface ClusterStatus {
  node_id: number;
  groups: GroupStatus[];
}

/** `count` UDP ports that were free a moment ago (bound, read, released). */
async function freeUdpPorts(count: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from({ length: count }, () => {
      const socket = createSocket('udp4');
      return new Promise<ReturnType<typeof createSocket>>((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket)));
    }),
  );
  const ports = sockets.map((socket) => socket.address().port);
  await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
  return ports;
}

export class StrandCluster {
  /** Member `i` has node id `i + 1`. */
  private constructor(readonly members: StrandProcess[]) {}

  static async start(count = 3): Promise<StrandCluster> {
    const ports = await freeUdpPorts(count);
    const list = ports.map((port, i) => `${i + 1}=127.0.0.1:${port}`).join(',');
    // All at once: a member waits for the others to elect a leader anyway.
    const members = await Promise.all(
      ports.map((port, i) =>
        StrandProcess.start(['--node-id', String(i + 1), '--cluster', list], {
          quicAddr: `127.0.0.1:${port}`,
          env: { STRAND_CLUSTER_SECRET: SECRET },
          quiet: process.env.STRAND_SDK_CLUSTER_LOGS === undefined,
        }),
      ),
    );
    return new StrandCluster(members);
  }

  get urls(): string[] {
    return this.members.map((member) => member.url);
  }

  /** `member`'s status, or undefined when it does not answer (killed). */
  async status(member: StrandProcess): Promise<ClusterStatus | undefined> {
    try {
      const response = await fetch(`${member.url}/v1/cluster/status`, { signal: AbortSignal.timeout(2_000) });
      return response.ok ? ((await response.json()) as ClusterStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The member that leads the meta group, once it says so and every member in `among`
   *  (default: all) names it. */
  async leader(among: StrandProcess[] = this.members, timeoutMs = 30_000): Promise<StrandProcess> {
    let found: StrandProcess | undefined;
    let views = '';
    await waitFor(
      async () => {
        const statuses = await Promise.all(among.map((member) => this.status(member)));
        views = JSON.stringify(statuses.map((status) => status?.groups[0] ?? null));
        const named = statuses.map((status) => status?.groups[0]?.leader ?? null);
        const id = named[0];
        if (id === null || id === undefined || named.some((other) => other !== id)) return false;
        const leader = this.members[id - 1];
        const own = leader === undefined ? undefined : await this.status(leader);
        if (own?.groups[0]?.role !== 'leader') return false;
        found = leader;
        return true;
      },
      () => `no agreed leader: ${views}`,
      timeoutMs,
    );
    return found!;
  }

  /** Wait until every member in `among` has applied what the leader has. */
  async caughtUp(among: StrandProcess[], timeoutMs = 30_000): Promise<void> {
    let views = '';
    await waitFor(
      async () => {
        const statuses = await Promise.all(among.map((member) => this.status(member)));
        const applied = statuses.map((status) => status?.groups[0]?.applied_index ?? -1);
        views = JSON.stringify(applied);
        return applied.every((index) => index >= 0 && index === applied[0]);
      },
      () => `members not caught up: applied ${views}`,
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((member) => member.stop()));
    await sleep(0);
  }
}
