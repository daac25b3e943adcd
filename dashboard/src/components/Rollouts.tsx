//! Rollouts by waves (`status.rollouts`): per service the versions, the desiring commit,
//! the state, and the waves in order with their counts and times, the current wave
//! standing out. A halted rollout is an alert with its reason, the version's known-bad
//! record and links to its fault reports. Reads itself every 2 s while a rollout rolls
//! (a wave is promoted as time passes, which `statusChanged` does not push), else on
//! each push. Loaded lazily: by the overview only when a rollout is under way, and by
//! the Rollouts page.
import { Alert, Anchor, Badge, Card, Code, Group, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { graphql } from '../gql';
import type { RolloutsQuery } from '../gql/graphql';
import { request } from '../api/client';
import { useStatusPush } from '../api/statusPush';
import { knownBadIndex } from '../lib/commits';
import { short, time } from '../lib/format';
import { PHASE_LABEL, rolloutLine, rolloutPoll, wavePhases, type WavePhase } from '../lib/rollouts';
import { Problem } from './Problem';

const Rollouts = graphql(`
  query Rollouts {
    status {
      rollouts {
        service
        fromVersion
        toVersion
        commit
        state
        currentWave
        haltedBecause
        startedAt
        waves {
          name
          instances
          updated
          healthy
          failed
          reachedAt
          promotedAt
        }
      }
    }
    knownBadVersions {
      service
      version
      reason
      faultIds
    }
  }
`);

type Rollout = RolloutsQuery['status']['rollouts'][number];
type Bad = RolloutsQuery['knownBadVersions'][number];

const ROLLOUTS_KEY = ['rollouts'];

const STATE_COLOR: Record<string, string> = { rolling: 'blue', halted: 'red', done: 'teal' };
const PHASE_COLOR: Record<WavePhase, string> = { promoted: 'teal', current: 'blue', halted: 'red', reached: 'blue', waiting: 'gray' };

/** Why a rollout halted, and where to look: the known-bad record and its fault reports. */
function Halted({ rollout, bad }: { rollout: Rollout; bad: Bad | undefined }) {
  return (
    <Alert color="red" role="alert" title={`The rollout of ${rollout.service} ${rollout.toVersion} halted: later waves keep ${rollout.fromVersion}`} data-testid="rollout-halted">
      <Stack gap={4}>
        <Text size="sm">{rollout.haltedBecause ?? 'a wave failed beyond its maxFailures'}</Text>
        {bad && (
          <Text size="sm" data-testid="rollout-known-bad">
            {bad.version} is{' '}
            <Anchor component={Link} to="/" size="sm">
              known-bad
            </Anchor>
            : {bad.reason}
          </Text>
        )}
        <Group gap="xs">
          <Text size="sm">Fault reports:</Text>
          {bad?.faultIds.map((id) => (
            <Anchor key={id} component={Link} to={`/faults?id=${encodeURIComponent(id)}`} size="sm" ff="monospace">
              {id}
            </Anchor>
          ))}
          <Anchor component={Link} to={`/faults?service=${encodeURIComponent(rollout.service)}`} size="sm">
            every fault report of {rollout.service}
          </Anchor>
        </Group>
      </Stack>
    </Alert>
  );
}

function Waves({ rollout }: { rollout: Rollout }) {
  const phases = wavePhases(rollout);
  return (
    <Table aria-label={`Waves of ${rollout.service}`} verticalSpacing={4}>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Wave</Table.Th>
          <Table.Th />
          <Table.Th ta="right">Instances</Table.Th>
          <Table.Th ta="right">Updated</Table.Th>
          <Table.Th ta="right">Healthy</Table.Th>
          <Table.Th ta="right">Failed</Table.Th>
          <Table.Th>Reached</Table.Th>
          <Table.Th>Promoted</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {rollout.waves.map((wave, i) => {
          const phase = phases[i];
          const stands = phase === 'current' || phase === 'halted';
          return (
            <Table.Tr
              key={wave.name}
              data-wave={wave.name}
              aria-current={stands ? 'step' : undefined}
              style={stands ? { background: `var(--mantine-color-${PHASE_COLOR[phase]}-light)`, fontWeight: 600 } : undefined}
            >
              <Table.Td>{wave.name}</Table.Td>
              <Table.Td>
                <Badge size="sm" variant={stands ? 'filled' : 'light'} color={PHASE_COLOR[phase]} data-testid="wave-phase">
                  {PHASE_LABEL[phase]}
                </Badge>
              </Table.Td>
              <Table.Td ta="right" data-testid="wave-instances">
                {wave.instances}
              </Table.Td>
              <Table.Td ta="right" data-testid="wave-updated">
                {wave.updated}
              </Table.Td>
              <Table.Td ta="right" data-testid="wave-healthy">
                {wave.healthy}
              </Table.Td>
              <Table.Td ta="right" c={wave.failed ? 'red' : undefined} data-testid="wave-failed">
                {wave.failed}
              </Table.Td>
              <Table.Td>{time(wave.reachedAt)}</Table.Td>
              <Table.Td>{time(wave.promotedAt)}</Table.Td>
            </Table.Tr>
          );
        })}
      </Table.Tbody>
    </Table>
  );
}

function RolloutCard({ rollout, bad }: { rollout: Rollout; bad: Bad | undefined }) {
  return (
    <Card withBorder data-rollout={rollout.service}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Group gap="xs">
            <Title order={3} size="h4">
              {rollout.service}
            </Title>
            <Text ff="monospace" size="sm">
              {rollout.fromVersion} → {rollout.toVersion}
            </Text>
            <Badge color={STATE_COLOR[rollout.state] ?? 'gray'} data-testid="rollout-state">
              {rolloutLine(rollout)}
            </Badge>
          </Group>
          <Text size="sm" c="dimmed">
            desired by <Code title={rollout.commit}>{short(rollout.commit)}</Code>, started {time(rollout.startedAt)}
          </Text>
        </Group>
        {rollout.state === 'halted' && <Halted rollout={rollout} bad={bad} />}
        <Waves rollout={rollout} />
      </Stack>
    </Card>
  );
}

/** Each service's rollout; `active` leaves out the finished ones (the overview). */
export default function RolloutList({ active = false }: { active?: boolean }) {
  const live = useStatusPush(ROLLOUTS_KEY);
  const { data, error } = useQuery({
    queryKey: ROLLOUTS_KEY,
    queryFn: () => request(Rollouts),
    refetchInterval: (query) => rolloutPoll(query.state.data?.status.rollouts, live),
  });
  if (error) return <Problem error={error} />;
  if (!data) return <Text c="dimmed">Loading the rollouts…</Text>;
  const rollouts = data.status.rollouts.filter((r) => !active || r.state !== 'done');
  const knownBad = knownBadIndex(data.knownBadVersions);
  if (rollouts.length === 0 && active) return null;
  if (rollouts.length === 0)
    return (
      <Text c="dimmed">
        No rollout by waves yet: a service with <Code>waves</Code> in rollout.yaml starts one when its desired client version changes.
      </Text>
    );
  return (
    <Stack gap="sm">
      {rollouts.map((r) => (
        <RolloutCard key={r.service} rollout={r} bad={knownBad(r.service, r.toVersion)} />
      ))}
    </Stack>
  );
}
