import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';

/**
 * Listening, closing and reading bodies, once for every local server: the emulator, the demo page,
 * dynalite and the tests' own servers.
 */

export interface Listening {
  /** `http://host:port`, callable from this machine even when listening on every interface. */
  origin: string;
  port: number;
  /** Stops the server and its open connections; a second call shares the first. */
  close(): Promise<void>;
}

/** Starts `server` on the port (0: any free one) and host, and answers how to reach and stop it. */
export async function listen(server: Server, port = 0, host = '127.0.0.1', beforeClose?: () => void): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const reachable = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  const name = reachable.includes(':') ? `[${reachable}]` : reachable;
  // Closing twice (a test's own close, then its cleanup) must not fail: the first close is shared.
  let closed: Promise<void> | undefined;
  return {
    origin: `http://${name}:${address.port}`,
    port: address.port,
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        beforeClose?.();
        server.close((error) => (error ? reject(error) : resolve()));
        // Clients keep connections alive (SDKs, fetch); without this, close waits for them to time out.
        (server as Partial<HttpServer>).closeAllConnections?.();
      });
      return closed;
    },
  };
}

/**
 * A port that is free right now: `port` itself (rejecting with the system's error, e.g. EADDRINUSE,
 * when it is taken), or with 0 one the system picks.
 */
export async function freePort(port = 0, host = '127.0.0.1'): Promise<number> {
  const probe = await listen(createServer(), port, host);
  await probe.close();
  return probe.port;
}

/** True when something accepts TCP connections on the port. */
export function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The whole body, or undefined when it is over `maxBytes`. */
export async function readBody(request: IncomingMessage, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
