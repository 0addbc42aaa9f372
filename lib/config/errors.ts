/** A required setting is missing or malformed: the request is answered 503, nothing is stored. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}
