// The channels: Slack incoming webhook, SMTP mail, Kubernetes Event. Each returns an outcome instead of
// throwing so the caller can record what did succeed before asking the broker to retry the rest.
// Error texts never carry the webhook URL or SMTP credentials (URLs are stripped; the logger censors too).
import { IncomingWebhook, type FetchFunction } from '@slack/webhook';
import nodemailer from 'nodemailer';
import type { KubePort } from '../../runtime/kube.ts';
import { Resources } from '../../runtime/resources.ts';
import { stripUrls, type K8sEventObject, type SlackMessage } from './decide.ts';

/** `ok`; `retry`: worth another delivery; `failed`: will never work as configured (logged, not retried). */
export type ChannelOutcome = { outcome: 'ok' } | { outcome: 'retry' | 'failed'; error: string };

const TIMEOUT_MS = 10_000;

export async function sendSlack(webhookUrl: string, message: SlackMessage, fetchFn: typeof fetch): Promise<ChannelOutcome> {
  try {
    const webhook = new IncomingWebhook(webhookUrl, { fetch: fetchFn as unknown as FetchFunction, timeout: TIMEOUT_MS });
    await webhook.send({ text: message.text, blocks: message.blocks });
    return { outcome: 'ok' };
  } catch (err) {
    const status = (err as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number') {
      // Slack answers 4xx for a revoked/invalid webhook or bad payload: retrying cannot help (429 can).
      const retry = status >= 500 || status === 429 || status === 408;
      return { outcome: retry ? 'retry' : 'failed', error: `slack answered HTTP ${status}` };
    }
    return { outcome: 'retry', error: `slack request failed: ${safeMessage(err)}` };
  }
}

export interface SmtpTarget {
  host: string;
  port: number;
  secure: boolean;
  ignoreTLS: boolean;
  auth: { user: string; pass: string } | undefined;
}

/**
 * `smtp://user:pass@host:port` (STARTTLS when the server offers it), `smtps://...` (implicit TLS, default
 * port 465). `?starttls=false` (or `?ignoreTLS=true`) never upgrades: only for loopback test servers.
 */
export function parseSmtpUrl(smtpUrl: string): SmtpTarget {
  let url: URL;
  try { url = new URL(smtpUrl); } catch { throw new Error('SMTP_URL is not a URL'); }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new Error(`SMTP_URL must be smtp:// or smtps://, not ${url.protocol}//`);
  const secure = url.protocol === 'smtps:';
  const starttls = url.searchParams.get('starttls');
  const ignoreTLS = starttls === 'false' || url.searchParams.get('ignoreTLS') === 'true';
  const user = decodeURIComponent(url.username);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    ignoreTLS: !secure && ignoreTLS,
    auth: user ? { user, pass: decodeURIComponent(url.password) } : undefined,
  };
}

export interface Mail { from: string; to: string[]; subject: string; text: string; html: string }

export async function sendEmail(smtpUrl: string, mail: Mail): Promise<ChannelOutcome> {
  let target: SmtpTarget;
  try { target = parseSmtpUrl(smtpUrl); } catch (err) { return { outcome: 'failed', error: safeMessage(err) }; }
  const transport = nodemailer.createTransport({
    host: target.host,
    port: target.port,
    secure: target.secure,
    ignoreTLS: target.ignoreTLS,
    ...(target.auth ? { auth: target.auth } : {}),
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS * 2,
  });
  try {
    await transport.sendMail({ from: mail.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
    return { outcome: 'ok' };
  } catch (err) {
    const code = (err as { responseCode?: unknown }).responseCode;
    // 5xx SMTP replies (bad credentials, rejected recipient) are permanent; 4xx and transport errors are not.
    const permanentReply = typeof code === 'number' && code >= 500 && code < 600;
    const what = typeof code === 'number' ? `smtp answered ${code}` : 'smtp delivery failed';
    return { outcome: permanentReply ? 'failed' : 'retry', error: `${what}: ${safeMessage(err)}` };
  } finally {
    transport.close();
  }
}

/** Creates the Event; AlreadyExists means an earlier delivery wrote it: delivered. */
export async function createK8sEvent(kube: KubePort, event: K8sEventObject, recordedChannels?: string): Promise<ChannelOutcome> {
  try {
    const body = recordedChannels === undefined ? event : { ...event, metadata: { ...event.metadata, annotations: { 'mlops.dev/notified-channels': recordedChannels } } };
    await kube.create(Resources.event, { apiVersion: 'v1', kind: 'Event', ...body });
    return { outcome: 'ok' };
  } catch (err) {
    const kind = (err as { kind?: unknown }).kind;
    return { outcome: kind === 'permanent' ? 'failed' : 'retry', error: `kubernetes event: ${safeMessage(err)}` };
  }
}

function safeMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return stripUrls(message).replace(/\s+/g, ' ').slice(0, 300);
}
