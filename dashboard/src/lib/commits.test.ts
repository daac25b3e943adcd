import { describe, expect, it } from 'vitest';
import { commitPlace, knownBadIndex } from './commits';

describe('commits', () => {
  it('places a host on the tip, in force behind an invalid tip, older, or unknown', () => {
    const repo = { tip: 'c3', commit: 'c2' };
    expect(commitPlace('c3', repo)).toBe('tip');
    expect(commitPlace('c2', repo)).toBe('in-force');
    expect(commitPlace('c1', repo)).toBe('older');
    expect(commitPlace(null, repo)).toBe('unknown');
    expect(commitPlace('c2', { tip: 'c2', commit: 'c2' })).toBe('tip');
  });

  it('finds a known-bad version by service and version only', () => {
    const find = knownBadIndex([{ service: 'api', version: 'acme-1.0.1', reason: 'exited' }]);
    expect(find('api', 'acme-1.0.1')?.reason).toBe('exited');
    expect(find('api', 'acme-1.0.0')).toBeUndefined();
    expect(find('web', 'acme-1.0.1')).toBeUndefined();
    expect(find('api', null)).toBeUndefined();
  });
});
