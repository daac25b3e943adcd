//! A rollout by waves (`status.rollouts`) as the pages show it: where each wave stands
//! (promoted, the current one, waiting), which one stands out, and the one-line state.

/** The parts of a rollout this module reads (a subset of the GraphQL `RolloutStatus`). */
export interface RolloutInput {
  state: string;
  currentWave: string;
  waves: { name: string; reachedAt?: string | null; promotedAt?: string | null }[];
}

/** Where one wave stands: handed on, the one the rollout waits on (or halted in), reached
 * but not current (a rollout whose waves changed), or not reached yet. */
export type WavePhase = 'promoted' | 'current' | 'halted' | 'reached' | 'waiting';

/** Words for a phase, as the waves table shows it. */
export const PHASE_LABEL: Record<WavePhase, string> = {
  promoted: 'promoted',
  current: 'current',
  halted: 'halted here',
  reached: 'reached',
  waiting: 'waiting',
};

/** The phase of each wave of `rollout`, in order. */
export function wavePhases(rollout: RolloutInput): WavePhase[] {
  const current = rollout.waves.findIndex((w) => w.name === rollout.currentWave);
  return rollout.waves.map((wave, index): WavePhase => {
    if (wave.promotedAt) return 'promoted';
    if (index === current && rollout.state === 'halted') return 'halted';
    if (index === current && rollout.state === 'rolling') return 'current';
    if (wave.reachedAt || (current >= 0 && index <= current)) return 'reached';
    return 'waiting';
  });
}

/** One line for a rollout: `rolling: wave canary (1 of 3)`, `halted in wave canary`, `done`. */
export function rolloutLine(rollout: RolloutInput): string {
  const index = rollout.waves.findIndex((w) => w.name === rollout.currentWave);
  const place = index >= 0 ? `wave ${rollout.currentWave} (${index + 1} of ${rollout.waves.length})` : `wave ${rollout.currentWave}`;
  if (rollout.state === 'halted') return `halted in ${place}`;
  if (rollout.state === 'done') return `done: all ${rollout.waves.length} waves`;
  return `rolling: ${place}`;
}

/** How often a page showing rollouts reads them: every 2 s while one rolls (a wave is
 * promoted when time passes, which the server does not push), else as a safety net. */
export function rolloutPoll(rollouts: readonly { state: string }[] | undefined, live: boolean): number {
  if (rollouts?.some((r) => r.state === 'rolling')) return 2_000;
  return live ? 30_000 : 2_000;
}
