import { startDynaliteServer } from '../../dev/local/dynalite';

export { createCatalogTable, createOrdersTable } from '../../dev/local/tables';

/** An in-memory dynalite on a free 127.0.0.1 port, for one test file or suite. */
export async function startDynalite(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const { endpoint, close } = await startDynaliteServer({ port: 0 });
  return { endpoint, close };
}
