// Local stand-ins for the notification channels, so `mlops dev` shows what notify would send when the
// environment names no real Slack webhook or SMTP server (README: local stand-ins).
import { createServer, type Server } from 'node:http';
import { SMTPServer } from 'smtp-server';

export interface LocalChannels {
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startLocalChannels(opts: {
  slack: boolean;
  smtp: boolean;
  onMessage: (channel: 'slack' | 'email', summary: string) => void;
}): Promise<LocalChannels> {
  const env: Record<string, string> = {};
  const closers: Array<() => Promise<void>> = [];
  if (opts.slack) {
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        try { opts.onMessage('slack', firstLine((JSON.parse(body) as { text?: string }).text ?? body)); } catch { opts.onMessage('slack', firstLine(body)); }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    env.SLACK_WEBHOOK_URL = `http://127.0.0.1:${(server.address() as { port: number }).port}/services/mlops-dev/local/webhook`;
    closers.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  }
  if (opts.smtp) {
    const smtp = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
      onAuth: (auth, _session, cb) => { cb(null, { user: auth.username }); },
      onData: (stream, session, cb) => {
        let raw = '';
        stream.on('data', (c: Buffer) => { raw += c.toString(); });
        stream.on('end', () => {
          const subject = /^Subject: (.*)$/m.exec(raw)?.[1] ?? '(no subject)';
          opts.onMessage('email', `to ${session.envelope.rcptTo.map((r) => r.address).join(', ')}: ${subject}`);
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    env.SMTP_URL = `smtp://mlops-dev:local@127.0.0.1:${(smtp.server.address() as { port: number }).port}?starttls=false`;
    env.SMTP_FROM = 'model-lifecycle@localhost';
    closers.push(() => new Promise<void>((r) => smtp.close(() => r())));
  }
  return { env, async close() { for (const c of closers) await c(); } };
}

const firstLine = (text: string): string => (text.split('\n')[0] ?? '').slice(0, 200);
