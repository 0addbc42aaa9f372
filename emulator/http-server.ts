import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/** The whole body, or undefined when it is over `maxBytes`. */
export async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
