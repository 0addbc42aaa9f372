/**
 * The key of payers' session tokens on the local stack and in the tests (`SESSION_KEY`, local use
 * only; deployed stages read theirs from SSM, `SESSION_KEY_PARAM`). A placeholder, nobody's secret.
 */
export const LOCAL_SESSION_KEY = 'local-session-key-not-a-secret-0123456789';
