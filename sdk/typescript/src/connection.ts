/**
 * The client's one WebSocket to the gateway (docs/websocket.md), shared by all its live
 * queries: it authenticates, (re)subscribes every registered subscription once
 * authenticated, routes messages by `subscription_id`, and when the socket goes away for any
 * reason (server restart, network cut, `slow_consumer`) reconnects with jittered exponential
 * backoff, to the next of its addresses when it has several (a cluster's members: any of them
 * serves every subscription, at the same `_seq`s). It knows nothing of rows: each
 * subscription decides what to resume from.
 */

import { StrandError, fromServerError } from './errors.js';

/** What the connection is doing: opening its first socket, authenticated and serving,
 *  waiting to open a new one after losing the last, or closed for good. */
export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** A server message (one JSON object with a string `type`). */
export type ServerMessage = Record<string, unknown> & { type: string };

/** What a subscription gives the connection. */
export interface SubscriptionPeer {
  /** The `subscribe` message to send now (after every reconnect it may resume elsewhere). */
  subscribeMessage(): Record<string, unknown>;
  /** A message about this subscription. */
  receive(message: ServerMessage): void;
  /** The socket is gone; the subscription is sent again once a new one authenticates. */
  disconnected(): void;
  /** The connection closed for good (`client.close()`, or credentials the server refuses). */
  closed(error: StrandError | undefined): void;
}

/** The WebSocket constructor: the global one, or one the application passes. */
export type WebSocketConstructor = new (url: string) => WebSocket;

/** How long to wait before reconnecting: full jitter over an exponential cap. */
export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export interface ConnectionOptions {
  /** The servers' HTTP addresses (`http://host:port`): the socket opens on one at a time,
   *  in order, moving to the next each time it is lost or cannot open. */
  addresses: readonly string[];
  /** The `authenticate` message to send to `address` (fetches its token first when needed). */
  authenticate: (address: string) => Promise<Record<string, unknown>>;
  /** `address` refused the credentials: `true` if fresh ones may work (an expired token
   *  and a password to log in again with), so the connection tries again instead of closing. */
  credentialsRefused: (address: string) => boolean;
  webSocket: WebSocketConstructor;
  backoff: Backoff;
}

export class Connection {
  state: ConnectionState = 'connecting';
  private socket: WebSocket | undefined;
  private readonly peers = new Map<string, SubscriptionPeer>();
  private readonly listeners = new Set<(state: ConnectionState) => void>();
  private attempts = 0;
  /** Which of `options.addresses` the socket opens on (or is open on). */
  private at = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private started = false;

  constructor(private readonly options: ConnectionOptions) {
    if (options.addresses.length === 0) throw new StrandError('invalid_options', 'no server address');
  }

  /** The HTTP address of the server the socket is open on, or opens on next. */
  get address(): string {
    return this.options.addresses[this.at]!;
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Open the socket now, before any subscription (a page that shows the connection state). */
  start(): void {
    if (this.started || this.state === 'closed') return;
    this.started = true;
    this.open();
  }

  /** Register `peer` under `id` and subscribe it when (or as soon as) the socket is live. */
  add(id: string, peer: SubscriptionPeer): void {
    this.peers.set(id, peer);
    if (this.state === 'closed') {
      peer.closed(new StrandError('closed', 'the client is closed'));
      return;
    }
    if (!this.started) {
      this.start();
    } else if (this.state === 'live') {
      this.send(peer.subscribeMessage());
    }
  }

  /** Forget `id`; tell the server when it may still be subscribed. */
  remove(id: string): void {
    if (this.peers.delete(id) && this.state === 'live') {
      this.send({ type: 'unsubscribe', subscription_id: id });
    }
  }

  /** Send `message` if the socket is live (else it is sent again on reconnect, by its peer). */
  send(message: Record<string, unknown>): void {
    if (this.state === 'live' && this.socket && this.socket.readyState === 1) {
      this.socket.send(JSON.stringify(message));
    }
  }

  /** Subscribe `id` again on the live socket (after an error that ended it there). */
  resubscribe(id: string): void {
    const peer = this.peers.get(id);
    if (peer && this.state === 'live') this.send(peer.subscribeMessage());
  }

  /** Drop the socket now, as a network cut would; it reconnects (for tests and `online` events). */
  reconnectNow(): void {
    this.socket?.close();
  }

  close(error?: StrandError): void {
    if (this.state === 'closed') return;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.setState('closed');
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
    for (const peer of this.peers.values()) peer.closed(error);
    this.peers.clear();
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }

  private open(): void {
    const address = this.address;
    let socket: WebSocket;
    try {
      socket = new this.options.webSocket(`${address.replace(/^http/, 'ws')}/v1/ws`);
    } catch {
      this.lost(undefined);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.options.authenticate(address).then(
        (message) => {
          if (this.socket === socket) socket.send(JSON.stringify(message));
        },
        (error: unknown) => {
          // Credentials the HTTP API refuses will not work on the socket either.
          const failure = error instanceof StrandError ? error : new StrandError('network', String(error));
          if (failure.code === 'unauthorized') this.close(failure);
          else socket.close();
        },
      );
    };
    socket.onmessage = (event: MessageEvent) => {
      if (this.socket !== socket) return;
      let message: ServerMessage;
      try {
        message = JSON.parse(String(event.data)) as ServerMessage;
      } catch {
        return;
      }
      this.receive(message);
    };
    socket.onclose = () => {
      if (this.socket === socket) this.lost(socket);
    };
    socket.onerror = () => {
      // Usually `onclose` follows, but not always: a socket that fails in its handshake may
      // report only the error (seen with Node's WebSocket). Either event ends the socket once.
      if (this.socket !== socket) return;
      this.lost(socket);
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    };
  }

  private receive(message: ServerMessage): void {
    switch (message.type) {
      case 'auth_success':
        this.attempts = 0;
        this.setState('live');
        for (const peer of this.peers.values()) this.send(peer.subscribeMessage());
        return;
      case 'auth_error':
        if (this.options.credentialsRefused(this.address)) {
          this.socket?.close();
          return;
        }
        this.close(new StrandError('unauthorized', String(message.message ?? 'authentication failed')));
        return;
      case 'pong':
        return;
    }
    const id = message.subscription_id;
    if (typeof id === 'string') {
      this.peers.get(id)?.receive(message);
      return;
    }
    if (message.type === 'error' && message.code === 'too_many_attempts') {
      this.close(fromServerError(message));
    }
    // Other connection-level errors (`slow_consumer`, ...) are followed by a close: reconnect.
  }

  private lost(socket: WebSocket | undefined): void {
    if (this.state === 'closed') return;
    if (socket !== undefined) this.socket = undefined;
    for (const peer of this.peers.values()) peer.disconnected();
    // Round robin: a member that died or is cut off is likely still so; the next one serves
    // the same subscriptions from the same `_seq`s. One address: the same one again.
    this.at = (this.at + 1) % this.options.addresses.length;
    // Until the first socket is live the client is still connecting; after, reconnecting.
    this.setState(this.state === 'connecting' ? 'connecting' : 'reconnecting');
    const { initialMs, maxMs } = this.options.backoff;
    const cap = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempts, 16));
    this.attempts += 1;
    const delay = Math.random() * cap;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.state !== 'closed') this.open();
    }, delay);
  }
}
