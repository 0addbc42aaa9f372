import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';

export interface DynaliteOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
}

export interface RunningDynalite {
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts dynalite in this process with its data in memory. Tables become ACTIVE at once (no
 * simulated CREATING delay), so a table is usable as soon as CreateTable returns.
 */
export async function startDynaliteServer({ port, host = '127.0.0.1' }: DynaliteOptions): Promise<RunningDynalite> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://${host}:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // SDK clients keep connections alive; without this, close waits for them to time out.
        server.closeAllConnections();
      }),
  };
}
