import { describe, expect, it } from 'vitest';
import { desiredDiff, effective, listChanges } from './diff';

const current = [
  { service: 'api', version: 'acme-1.0.0' },
  { service: 'web', version: 'acme-2.0.0' },
];

describe('desired list edits', () => {
  it('drops changes that set what is already there and keeps the last change per service', () => {
    expect(
      effective(current, [
        { service: 'api', version: 'acme-1.0.0' },
        { service: 'web', version: 'acme-2.0.1' },
        { service: 'web', version: 'acme-2.0.2' },
        { service: 'gone', version: null },
      ]),
    ).toEqual([{ service: 'web', version: 'acme-2.0.2' }]);
  });

  it('shows a change, an addition and a removal as YAML lines', () => {
    const diff = desiredDiff('desired/developer.yaml', current, [
      { service: 'web', version: 'acme-2.0.1' },
      { service: 'db', version: 'acme-0.1.0' },
      { service: 'api', version: null },
    ]);
    expect(diff.lines).toEqual([
      { kind: '-', text: '  api: acme-1.0.0' },
      { kind: '+', text: '  db: acme-0.1.0' },
      { kind: '-', text: '  web: acme-2.0.0' },
      { kind: '+', text: '  web: acme-2.0.1' },
    ]);
  });

  it('lists what changed between two revisions', () => {
    expect(listChanges(current, [{ service: 'api', version: 'acme-1.0.1' }, { service: 'x', version: 'acme-1.0.0' }])).toEqual([
      { service: 'api', from: 'acme-1.0.0', to: 'acme-1.0.1' },
      { service: 'web', from: 'acme-2.0.0', to: null },
      { service: 'x', from: null, to: 'acme-1.0.0' },
    ]);
  });
});
