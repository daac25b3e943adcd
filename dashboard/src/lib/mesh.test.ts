//! The YAML lines of mesh entries, their review diff, and a provider's state phrase.
import { describe, expect, it } from 'vitest';
import { consumerLines, entryDiff, providerLines, providerState, yamlScalar, type ProviderEntry } from './mesh';

const jetto: ProviderEntry = { provider: 'jetto', url: 'https://jetto.example.com/graphql', accessTokenSecret: 'jetto-token', autoUpdate: 'OFF', testConsumer: null, uploadState: false, pinnedPublicKey: null };

describe('providerLines', () => {
  it('leaves out the defaults and writes autoUpdate as providers.yaml does', () => {
    expect(providerLines(jetto)).toEqual(['  jetto:', '    url: "https://jetto.example.com/graphql"', '    accessTokenSecret: jetto-token']);
    const pin = 'sha256//n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=';
    expect(providerLines({ ...jetto, autoUpdate: 'PULL_REQUEST', uploadState: true, testConsumer: 'staging', pinnedPublicKey: pin })).toEqual([
      '  jetto:',
      '    url: "https://jetto.example.com/graphql"',
      '    accessTokenSecret: jetto-token',
      '    testConsumer: staging',
      '    uploadState: true',
      '    autoUpdate: pullRequest',
      `    pinnedPublicKey: "${pin}"`,
    ]);
  });
});

describe('yamlScalar', () => {
  it('quotes what the server quotes', () => {
    for (const [text, written] of [
      ['jetto-token', 'jetto-token'],
      ['payment-api', 'payment-api'],
      ['1password', '"1password"'],
      ['yes', '"yes"'],
      ['Null', '"Null"'],
      ['a: b', '"a: b"'],
      ['https://jetto.example.com', '"https://jetto.example.com"'],
      ['', '""'],
    ]) {
      expect(yamlScalar(text), text).toBe(written);
    }
  });
});

describe('entryDiff', () => {
  it('adds every line of a new entry and removes every line of a removed one', () => {
    const lines = consumerLines({ consumer: 'acme', profile: 'partner', url: null, testConsumer: null });
    expect(entryDiff(null, lines)).toEqual([
      { kind: '+', text: '  acme:' },
      { kind: '+', text: '    profile: partner' },
    ]);
    expect(entryDiff(lines, null).map((l) => l.kind)).toEqual(['-', '-']);
  });

  it('shows a changed entry by its name and the fields that differ only', () => {
    const before = providerLines(jetto);
    const after = providerLines({ ...jetto, autoUpdate: 'COMMIT' });
    expect(entryDiff(before, after)).toEqual([
      { kind: ' ', text: '  jetto:' },
      { kind: '+', text: '    autoUpdate: commit' },
    ]);
  });

  it('is empty when nothing changes', () => {
    expect(entryDiff(providerLines(jetto), providerLines({ ...jetto }))).toEqual([]);
  });
});

describe('providerState', () => {
  const fine = { reachable: true, tokenRefused: false, secretSet: true, offersNewer: false };
  it('names the most pressing state first', () => {
    expect(providerState({ ...fine, secretSet: false, reachable: false }).label).toBe('secret not set');
    expect(providerState({ ...fine, tokenRefused: true, reachable: false }).label).toBe('token refused');
    expect(providerState({ ...fine, reachable: false, offersNewer: true }).label).toBe('unreachable');
    expect(providerState({ ...fine, reachable: null }).label).toBe('not reached yet');
    expect(providerState({ ...fine, offersNewer: true, waitingChange: { branch: 'vupdate/jetto/abc' } }).label).toBe('change waiting for review');
    expect(providerState({ ...fine, offersNewer: true }).label).toBe('offers newer versions');
    expect(providerState(fine)).toEqual({ label: 'in sync', color: 'teal' });
  });
});
