import { createIdentityContext, type IdentityContext } from './identity/context';

let identity: IdentityContext | undefined;

/**
 * The container's identity context (logins, session tokens, the JS-SDK), built on first use. Its
 * settings are read at once; secrets and the token cache's table only when first needed. A failure
 * is not cached. Apart from lib/runtime.ts, so that the functions that log nobody in bundle none of it.
 */
export function identityContext(env: Record<string, string | undefined> = process.env): IdentityContext {
  // The DynamoDB SDK is loaded only by the JS-SDK config's token cache: logins never load it.
  identity ??= createIdentityContext(env, {
    documentClient: async (endpoint) => (await import('./store/dynamo')).createDocumentClient(endpoint),
  });
  return identity;
}
