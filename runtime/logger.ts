import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

// Secrets can reach a log line through headers, parsed settings or an error's request options; redact them
// by path, and censor every value we were told is secret wherever it appears in a message (see secretsCensor).
const redactPaths = [
  'headers.authorization', 'headers["x-hub-signature-256"]', 'req.headers.authorization',
  'authorization', 'token', 'password', 'secret', 'webhookUrl', 'smtpUrl',
  'settings.secrets', 'secrets', '*.authorization', '*.token', '*.password', '*.secret',
  '*.webhookUrl', '*.smtpUrl', '*.slackWebhookUrl', '*.driftIntakeToken', '*.githubWebhookSecret',
];

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Values that must never appear in any line (secrets from env); replaced by [REDACTED]. */
  secrets?: readonly string[];
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const secrets = (opts.secrets ?? []).filter((s) => s.length >= 4);
  const options = {
    name: opts.name,
    level: opts.level ?? 'info',
    base: { step: opts.name },
    redact: { paths: redactPaths, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    // Last line of defence: a secret embedded in a free-text message or error string.
    ...(secrets.length ? { hooks: { streamWrite: (line: string): string => secrets.reduce((acc, s) => acc.split(s).join('[REDACTED]'), line) } } : {}),
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that discards everything (tests of pure code, tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
