/**
 * What the SDK tests share: a real `strand serve` (the workspace's debug build, or
 * `STRAND_BINARY`) on 127.0.0.1 with a port it picks and a temporary data directory, killed
 * and restarted on the same port and data; a TCP proxy in front of it that can refuse
 * connections (offline) and cut every open one (a network cut); and polling helpers.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { createClient, type Client, type ClientOptions } from '../src/index.js';

export const ADMIN_PASSWORD = 'sdk-admin-pw';

/** `target/debug/strand` of the workspace (this file runs from `sdk/typescript/dist/test/`). */
function strandBinary(): string {
  return process.env.STRAND_BINARY ?? fileURLToPath(new URL('../../../../target/debug/strand', import.meta.url));
}

/** What a cluster member needs beyond the defaults: its own QUIC address and the secret. */
export interface ProcessSettings {
  /** Default `127.0.0.1:0`; a cluster member's must be the one `--cluster` names. */
  quicAddr?: string;
  env?: Record<string, string>;
  /** Drop the server's log (stderr) instead of passing it on: cluster members log every
   *  failed message to a killed peer. */
  quiet?: boolean;
}

export class StrandProcess {
  private child: ChildProcess | undefined;
  port = 0;

  private constructor(
    readonly dataDir: string,
    private readonly args: string[],
    private readonly settings: ProcessSettings,
  ) {}

  static async start(args: string[] = [], settings: ProcessSettings = {}): Promise<StrandProcess> {
    const server = new StrandProcess(mkdtempSync(join(tmpdir(), 'strand-sdk-')), args, settings);
    await server.launch();
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private launch(): Promise<void> {
    const addr = `127.0.0.1:${this.port}`;
    const child = spawn(
      strandBinary(),
      [
        'serve',
        ...['--data-dir', this.dataDir, '--http-addr', addr, '--quic-addr', this.settings.quicAddr ?? '127.0.0.1:0'],
        ...['--log-level', 'warn', ...this.args],
      ],
      {
        env: { ...process.env, STRAND_ADMIN_PASSWORD: ADMIN_PASSWORD, ...this.settings.env },
        stdio: ['ignore', 'pipe', this.settings.quiet ? 'ignore' : 'inherit'],
      },
    );
    this.child = child;
    return new Promise((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`no ready line from strand: ${text}`)), 20_000);
      child.once('exit', (code) => reject(new Error(`strand exited with ${code} before it was ready`)));
      child.stdout?.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const line = text.split('\n').find((l) => l.includes('"ready"'));
        if (!line) return;
        clearTimeout(timer);
        const ready = JSON.parse(line) as { http: string };
        this.port = Number(ready.http.split(':').pop());
        resolve();
      });
    });
  }

  /** SIGKILL, then wait for the exit. */
  async kill(): Promise<void> {
    const child = this.child;
    // A child killed by a signal has a `signalCode` and no `exitCode`.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Start again on the same port and data directory. */
  async restart(): Promise<void> {
    await this.kill();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.launch();
      } catch (error) {
        // The port may still be held for a moment after the kill.
        if (attempt >= 20) throw error;
        await sleep(100);
      }
    }
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A TCP proxy to `target`'s port: `offline` refuses new connections, `cut` ends open ones,
 *  `stall` stops passing the server's bytes on (a client that does not read). */
export class Proxy {
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  offline = false;
  port = 0;

  private constructor(
    private readonly server: Server,
    private readonly target: () => number,
  ) {}

  static async start(target: () => number): Promise<Proxy> {
    const server = createServer();
    const proxy = new Proxy(server, target);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    proxy.port = typeof address === 'object' && address ? address.port : 0;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    if (this.offline) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target(), '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.on('close', () => {
      upstream.destroy();
      this.pairs.delete(pair);
    });
    upstream.on('close', () => client.destroy());
  }

  /** Stop reading what the server sends (its socket buffers fill, then its queues). */
  stall(): void {
    for (const { client, upstream } of this.pairs) {
      upstream.unpipe(client);
      upstream.pause();
    }
  }

  /** Pass the server's bytes on again. */
  unstall(): void {
    for (const { client, upstream } of this.pairs) {
      upstream.pipe(client);
      upstream.resume();
    }
  }

  /** End every open connection at once, as a network cut does. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

export function adminClient(url: string, options: Partial<ClientOptions> = {}): Client {
  return createClient({
    url,
    auth: { username: 'admin', password: ADMIN_PASSWORD },
    backoff: { initialMs: 20, maxMs: 200 },
    ...options,
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `check` until it returns true; fails with `describe()` after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, describe: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await sleep(20);
  }
}

/** Rows as a canonical string, by `id`, with `_seq` (to compare a live result with a query). */
export function canonical(rows: readonly Record<string, unknown>[]): string {
  const text = (value: unknown) => (typeof value === 'bigint' ? `${value}n` : JSON.stringify(value));
  return rows
    .map((row) =>
      Object.keys(row)
        .sort()
        .map((key) => `${key}=${text(row[key])}`)
        .join(','),
    )
    .sort()
    .join('\n');
}

/** Deterministic randomness per test, so a failure can be replayed with its seed. */
export function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}
