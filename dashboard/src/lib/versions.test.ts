import { describe, expect, it } from 'vitest';
import { compareVersions, developerOf, nextBuild, parseVersion } from './versions';
import { splitRole } from './format';

describe('versions', () => {
  it('parses developer and client versions and refuses others', () => {
    expect(parseVersion('acme-1.2.3')).toEqual({ distribution: 'acme', build: [1, 2, 3], generation: 0 });
    expect(parseVersion('my-dist-1.2_4')).toEqual({ distribution: 'my-dist', build: [1, 2], generation: 4 });
    expect(parseVersion('acme')).toBeNull();
    expect(parseVersion('acme-1.x')).toBeNull();
  });

  it('orders numerically part by part, generations last', () => {
    const sorted = ['acme-1.10.0', 'acme-1.9.0', 'acme-1.9.0_2', 'acme-1.9.0_1'].sort(compareVersions);
    expect(sorted).toEqual(['acme-1.9.0', 'acme-1.9.0_1', 'acme-1.9.0_2', 'acme-1.10.0']);
  });

  it('prefills the next build of this distribution', () => {
    expect(nextBuild('acme', ['acme-1.9.0', 'acme-1.10.0', 'other-5.0.0'])).toBe('acme-1.10.1');
    expect(nextBuild('acme', [])).toBe('acme-1.0.0');
  });

  it('finds the developer version of a client version', () => {
    expect(developerOf('acme-1.2.3_4')).toBe('acme-1.2.3');
    expect(developerOf('acme-1.2.3')).toBe('acme-1.2.3');
  });

  it('splits a service as run into name and role', () => {
    expect(splitRole('hello-blue')).toEqual({ name: 'hello', role: 'blue' });
    expect(splitRole('hello')).toEqual({ name: 'hello', role: null });
  });
});
