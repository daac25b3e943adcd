import { describe, expect, it } from 'vitest';
import { outcomeColor, selfUpdateState } from './selfUpdate';

describe('selfUpdate', () => {
  const base = { programVersion: '0.9.0' };

  it('says off, up to date, updating, checking and refused', () => {
    expect(selfUpdateState(base)).toEqual({ label: 'off: no client version of the service distribution is desired', color: 'gray' });
    expect(selfUpdateState({ ...base, desiredVersion: 'acme-1.0.0', runningVersion: 'acme-1.0.0' }).label).toBe('up to date: runs acme-1.0.0');
    expect(selfUpdateState({ ...base, desiredVersion: 'acme-1.0.1', runningVersion: 'acme-1.0.0' }).label).toBe('updating to acme-1.0.1');
    expect(selfUpdateState({ ...base, desiredVersion: 'acme-1.0.1', pendingVersion: 'acme-1.0.1' }).label).toBe('checking acme-1.0.1: swapped in, not confirmed healthy yet');
    const refused = selfUpdateState({ ...base, desiredVersion: 'acme-1.0.1', runningVersion: 'acme-1.0.0', refusedVersion: 'acme-1.0.1' });
    expect(refused).toEqual({ label: 'acme-1.0.1 failed; not tried again while it stays desired', color: 'red' });
  });

  it('colours only a success green', () => {
    expect(outcomeColor('SUCCEEDED')).toBe('teal');
    expect(outcomeColor('ROLLED_BACK')).toBe('red');
  });
});
