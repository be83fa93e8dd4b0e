// The verifier keeps the outcome of tokens it checked (src/aideer/domain/tokens.ts): a cached token must
// still stop working when it expires, and a refused one must stay refused.
import { expect } from 'chai';
import { Tokens } from '../src/aideer/domain/tokens.ts';

const SECRET = 'tokens-test-secret-0123456789abcdef';

/** Runs `work` with the clock `ms` ahead, as fast-jwt reads it. */
function later<T>(ms: number, work: () => T): T {
  const now = Date.now;
  Date.now = () => now() + ms;
  try {
    return work();
  } finally {
    Date.now = now;
  }
}

describe('AIDeer tokens (Tokens)', () => {
  it('when an access token was accepted and its lifetime has passed, then it is refused', () => {
    const tokens = new Tokens({ secret: SECRET, accessMinutes: 5, refreshMinutes: 60 });
    const token = tokens.issue(7, 'access');
    expect(tokens.verify(token)).to.deep.equal({ userId: 7, refresh: false });
    expect(later(4 * 60_000, () => tokens.verify(token))).to.deep.equal({ userId: 7, refresh: false });
    expect(later(5 * 60_000 + 1000, () => tokens.verify(token))).to.equal(undefined);
  });

  it('when a refresh token was accepted, then it stays accepted past the access lifetime and is refused after its own', () => {
    const tokens = new Tokens({ secret: SECRET, accessMinutes: 5, refreshMinutes: 60 });
    const token = tokens.issue(9, 'refresh');
    expect(tokens.verify(token)).to.deep.equal({ userId: 9, refresh: true });
    expect(later(30 * 60_000, () => tokens.verify(token))).to.deep.equal({ userId: 9, refresh: true });
    expect(later(61 * 60_000, () => tokens.verify(token))).to.equal(undefined);
  });

  it('when a token is signed with another secret, then it is refused every time it is sent', () => {
    const token = new Tokens({
      secret: 'another-secret-0123456789abcdefghij',
      accessMinutes: 5,
      refreshMinutes: 60,
    }).issue(7, 'access');
    const tokens = new Tokens({ secret: SECRET, accessMinutes: 5, refreshMinutes: 60 });
    for (let i = 0; i < 3; i++) expect(tokens.verify(token)).to.equal(undefined);
  });
});
