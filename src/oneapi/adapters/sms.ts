// Delivery of verification codes. The log sender suits development; the webhook sender POSTs to
// an SMS gateway of the operator's choice.
import type { Logger } from '../../logger.ts';
import type { Purpose } from '../domain/accounts.ts';

export interface SmsSender {
  send(phone: string, code: string, purpose: Purpose): Promise<void>;
}

export function maskPhone(phone: string): string {
  return `${phone.slice(0, 3)}****${phone.slice(-4)}`;
}

export function logSender(logger: Logger, revealCode: boolean): SmsSender {
  return {
    send(phone, code, purpose) {
      logger.info(
        { phone: maskPhone(phone), purpose, ...(revealCode ? { verification_code: code } : {}) },
        'verification code issued',
      );
      return Promise.resolve();
    },
  };
}

export function webhookSender(url: string, timeoutMs = 5000): SmsSender {
  return {
    async send(phone, code, purpose) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ phone, code, purpose }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!res.ok) throw new Error(`SMS gateway answered ${res.status}`);
    },
  };
}
