/**
 * What every `wxpay` command answers, and the command-line handling they share: `--help`, and usage
 * errors answered with exit status 2, the message and the command's usage.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command's whole outcome: what `main` writes to the terminal, and the exit status. */
export interface WxpayResult {
  exitCode: 0 | 1 | 2;
  stdout: string;
  stderr: string;
}

/** The command line could not be used: exit status 2, with the command's usage. */
export class UsageError extends Error {}

/** The options of a command (util's own name for them is not exported). */
type Options = NonNullable<ParseArgsConfig['options']>;

const HELP = { help: { type: 'boolean', short: 'h', default: false } } as const;

/** A command's options and positionals; `--help` / `-h` is added to its options. */
export function readCommandLine<Own extends Options>(argv: readonly string[], options: Own) {
  return parseArgs<{ args: string[]; allowPositionals: true; options: Own & typeof HELP }>({
    args: [...argv],
    allowPositionals: true,
    options: { ...options, ...HELP },
  });
}

/** The answer to `--help`. */
export function help(usage: string): WxpayResult {
  return { exitCode: 0, stdout: `${usage}\n`, stderr: '' };
}

/**
 * The answer to a usage error (a UsageError, or parseArgs' own: an unknown option, a missing value),
 * or undefined for any other error.
 */
export function usageFailure(error: unknown, command: string, usage: string): WxpayResult | undefined {
  // parseArgs reports unknown options and missing values as TypeErrors with an ERR_PARSE_ARGS_* code.
  const isParseArgsError = String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
  if (!(error instanceof UsageError) && !isParseArgsError) return undefined;
  return { exitCode: 2, stdout: '', stderr: `${command}: ${(error as Error).message}\n\n${usage}\n` };
}
