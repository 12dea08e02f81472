import type { WebSocket } from 'ws';
import type { ManagedConnection } from './connections-api';
import type { ApiEndpoint, ConnectionIdentity } from './events';

/** API Gateway's frame size limit: a larger message is sent as several frames of at most 32 KB. */
export const MAX_FRAME_BYTES = 32 * 1024;

/** A client that has this much unsent data gets no more: @connections answers 429. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** Why a connection ended, as `$disconnect` reports it. */
export interface CloseInfo {
  readonly statusCode: number;
  readonly reason: string;
}

export interface ConnectionLimits {
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
}

/**
 * One open WebSocket connection: its identity (carried to every event), its socket, and API
 * Gateway's two clocks, the idle timeout and the maximum lifetime, both closing with 1001.
 */
export class LocalConnection implements ManagedConnection, ConnectionIdentity {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly userAgent: string;
  authorizer?: Record<string, unknown>;
  lastActiveAt: number;
  /** Set when the gateway closes the connection, so `$disconnect` reports the gateway's reason. */
  private serverClose: CloseInfo | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly lifetimeTimer: NodeJS.Timeout;

  constructor(
    identity: ConnectionIdentity,
    readonly endpoint: ApiEndpoint,
    readonly socket: WebSocket,
    private readonly limits: ConnectionLimits,
  ) {
    this.connectionId = identity.connectionId;
    this.connectedAt = identity.connectedAt;
    this.sourceIp = identity.sourceIp;
    this.userAgent = identity.userAgent;
    this.authorizer = identity.authorizer;
    this.lastActiveAt = Date.now();
    this.touch();
    this.lifetimeTimer = setTimeout(() => this.close(1001, 'Going away'), limits.maxLifetimeMs);
    this.lifetimeTimer.unref();
  }

  /** A data frame arrived: the idle clock starts over. */
  touch(): void {
    this.lastActiveAt = Date.now();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close(1001, 'Going away'), this.limits.idleTimeoutMs);
    this.idleTimer.unref();
  }

  isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  send(data: Buffer): boolean {
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) return false;
    if (data.length <= MAX_FRAME_BYTES) {
      this.socket.send(data, { binary: false });
      return true;
    }
    // Larger messages go out as a text frame and continuation frames, none over 32 KB.
    for (let offset = 0; offset < data.length; offset += MAX_FRAME_BYTES) {
      const end = Math.min(offset + MAX_FRAME_BYTES, data.length);
      this.socket.send(data.subarray(offset, end), { binary: false, fin: end === data.length });
    }
    return true;
  }

  disconnect(): void {
    this.close(1000, 'Connection Closed Normally');
  }

  /** Closes with a close frame; the code and reason are what `$disconnect` reports. */
  close(statusCode: number, reason: string): void {
    this.serverClose ??= { statusCode, reason };
    this.socket.close(statusCode, reason);
    // A client that never answers the close frame is cut off, as API Gateway would.
    setTimeout(() => this.socket.terminate(), 2_000).unref();
  }

  /** How the connection ended: the gateway's reason when it closed it, else the client's close frame. */
  closeInfo(clientCode: number, clientReason: string): CloseInfo {
    return this.serverClose ?? { statusCode: clientCode, reason: clientReason };
  }

  stopClocks(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.lifetimeTimer);
  }
}
