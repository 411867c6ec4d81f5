import { describe, expect, test } from '@jest/globals';
import { parseSmtpUrl } from './effects.ts';

describe('parseSmtpUrl', () => {
  test.each([
    ['smtp://user:p%40ss@mail.example.com:587', { host: 'mail.example.com', port: 587, secure: false, ignoreTLS: false, auth: { user: 'user', pass: 'p@ss' } }],
    ['smtp://mail.example.com', { host: 'mail.example.com', port: 587, secure: false, ignoreTLS: false, auth: undefined }],
    ['smtps://u:p@mail.example.com', { host: 'mail.example.com', port: 465, secure: true, ignoreTLS: false, auth: { user: 'u', pass: 'p' } }],
    ['smtp://u:p@127.0.0.1:2525?starttls=false', { host: '127.0.0.1', port: 2525, secure: false, ignoreTLS: true, auth: { user: 'u', pass: 'p' } }],
    ['smtp://u:p@[::1]:2525?ignoreTLS=true', { host: '::1', port: 2525, secure: false, ignoreTLS: true, auth: { user: 'u', pass: 'p' } }],
    // Implicit TLS cannot be turned off by the query.
    ['smtps://u:p@h:465?starttls=false', { host: 'h', port: 465, secure: true, ignoreTLS: false, auth: { user: 'u', pass: 'p' } }],
  ])('%s', (url, target) => {
    expect(parseSmtpUrl(url)).toEqual(target);
  });
  test('refuses other schemes without echoing the URL', () => {
    expect(() => parseSmtpUrl('http://u:secret@h')).toThrow('SMTP_URL must be smtp:// or smtps://, not http://');
    expect(() => parseSmtpUrl('not a url with secret')).toThrow(/^SMTP_URL is not a URL$/);
  });
});
