/**
 * The two jose functions session tokens use, in a module of their own so that they are imported by
 * name (and the rest of jose left out of the bundle) yet loaded only on the first token
 * (lib/identity/session-token.ts).
 */
export { jwtVerify, SignJWT } from 'jose';
