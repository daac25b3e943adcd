import { describe, expect, it } from 'vitest';
import { rolloutLine, rolloutPoll, wavePhases } from './rollouts';

const waves = (reached: number, promoted: number) =>
  ['canary', 'europe', 'everyone'].map((name, i) => ({ name, reachedAt: i < reached ? `t${i}` : null, promotedAt: i < promoted ? `p${i}` : null }));

describe('rollouts', () => {
  it('puts the first wave current and the others waiting when a rollout starts', () => {
    const r = { state: 'rolling', currentWave: 'canary', waves: waves(1, 0) };
    expect(wavePhases(r)).toEqual(['current', 'waiting', 'waiting']);
    expect(rolloutLine(r)).toBe('rolling: wave canary (1 of 3)');
  });

  it('marks the waves handed on as promoted and the next as current', () => {
    const r = { state: 'rolling', currentWave: 'europe', waves: waves(2, 1) };
    expect(wavePhases(r)).toEqual(['promoted', 'current', 'waiting']);
  });

  it('marks the wave a halted rollout stopped in, and the later ones waiting', () => {
    const r = { state: 'halted', currentWave: 'canary', waves: waves(1, 0) };
    expect(wavePhases(r)).toEqual(['halted', 'waiting', 'waiting']);
    expect(rolloutLine(r)).toBe('halted in wave canary (1 of 3)');
  });

  it('shows a finished rollout with every wave promoted and none current', () => {
    const r = { state: 'done', currentWave: 'everyone', waves: waves(3, 3) };
    expect(wavePhases(r)).toEqual(['promoted', 'promoted', 'promoted']);
    expect(rolloutLine(r)).toBe('done: all 3 waves');
  });

  it('counts a wave reached before the current one as reached even without its time', () => {
    const r = { state: 'rolling', currentWave: 'europe', waves: [{ name: 'canary' }, { name: 'europe' }, { name: 'everyone' }] };
    expect(wavePhases(r)).toEqual(['reached', 'current', 'waiting']);
  });

  it('polls every 2 s while a rollout rolls, else only as a safety net when pushed', () => {
    expect(rolloutPoll([{ state: 'done' }, { state: 'rolling' }], true)).toBe(2_000);
    expect(rolloutPoll([{ state: 'halted' }], true)).toBe(30_000);
    expect(rolloutPoll([], false)).toBe(2_000);
    expect(rolloutPoll(undefined, true)).toBe(30_000);
  });
});
