/**
 * What every AWS SDK client the product makes shares. Deployed, a client takes its region and
 * credentials from the Lambda environment; pointed at a local stand-in (dynalite, the local
 * EventBridge), it needs them given.
 */

/** Client options for a local stand-in at `endpoint`; none (the SDK's defaults) without one. */
export function localEndpointOptions(endpoint: string | undefined) {
  if (!endpoint) return {};
  return {
    endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    // A local stand-in accepts any credentials; a developer's machine may have none.
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    },
  };
}
