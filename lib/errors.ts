/**
 * The base of the errors a lib module throws for its callers to branch on: `code`, a fixed string
 * an API answer carries as it is, and a message fit for that answer (no secret in it). Each module
 * has its own subclass (OrderError, IdentityError), so that lib/http maps each module's classes to
 * an HTTP status without any module knowing of HTTP.
 */
export class CodedError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
