import dynalite from 'dynalite';
import { listen } from '../emulator/http-server';

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
  const listening = await listen(dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }), port, host);
  return { endpoint: listening.origin, port: listening.port, close: listening.close };
}
