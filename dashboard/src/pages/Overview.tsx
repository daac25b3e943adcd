//! The overview: the commit in force, the branch tip, the last invalid commit with
//! file:line:column, and per service its desired versions, images, builds and instances
//! on or off the desired version, with a mark on a desired version held back as
//! known-bad and on one under a rollout by waves, the rollouts under way and the
//! known-bad versions. Read again when the server says it changed (`statusChanged`),
//! every two seconds while that push is not connected; the service table is virtualised
//! so 200 services with 2,000 instances stay responsive.
import { lazy, memo, Suspense, useMemo, useRef, useState } from 'react';
import { Alert, Badge, Card, Code, Group, Select, SimpleGrid, Stack, Switch, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Link } from 'react-router';
import { graphql } from '../gql';
import type { OverviewQuery } from '../gql/graphql';
import { request } from '../api/client';
import { useStatusPush } from '../api/statusPush';
import { KnownBadMark } from '../components/KnownBadMark';
import { Problem } from '../components/Problem';
import { ago, short } from '../lib/format';

const Overview = graphql(`
  query Overview {
    status {
      synced
      reconciledCommit
      rollouts {
        service
        state
        currentWave
      }
      stateRepo {
        branch
        commit
        tip
        lastFetch
        fetchError
        lastError {
          commit
          problems {
            file
            line
            column
            message
          }
        }
      }
      services {
        service
        sync
        desiredDeveloperVersion
        desiredClientVersion
        heldBack
        developerImage
        clientImage
        instancesOnDesired
        instancesNotOnDesired
        roles {
          role
          instancesOnDesired
          instancesNotOnDesired
        }
        builds {
          target
          version
          state
          task
          message
        }
      }
    }
    knownBadVersions {
      service
      version
      reason
      instances
      recordedAt
      faultIds
    }
    serviceProfiles {
      profile
      services
    }
  }
`);

// Rare, so not part of the first load.
const KnownBadVersions = lazy(() => import('../components/KnownBad'));
const RolloutList = lazy(() => import('../components/Rollouts'));

/** How often the overview is read: while the push is connected only as a safety net
 * (an instance that stops reporting changes nothing the server pushes), else often. */
const POLL_LIVE_MS = 30_000;
const POLL_MS = 2_000;

type ServiceRow = OverviewQuery['status']['services'][number];
type RolloutRow = OverviewQuery['status']['rollouts'][number];

const SYNC_COLOR: Record<string, string> = {
  SYNCED: 'teal',
  BUILDING: 'blue',
  BUILD_FAILED: 'red',
  OUT_OF_SYNC: 'orange',
};

// The rows use native `title` hints rather than Mantine tooltips: a tooltip is a floating
// element with hooks of its own per badge, and the table shows hundreds of badges.

function Image({ present, label }: { present: boolean | null | undefined; label: string }) {
  if (present == null) return <Text span c="dimmed">—</Text>;
  return (
    <Badge size="sm" variant="light" color={present ? 'teal' : 'gray'} title={present ? `${label} image stored` : `no ${label} image yet`}>
      {present ? 'image' : 'no image'}
    </Badge>
  );
}

function Builds({ row }: { row: ServiceRow }) {
  if (!row.builds.length) return <Text span c="dimmed">—</Text>;
  return (
    <Group gap={4}>
      {row.builds.map((build) => {
        const color = build.state === 'FAILED' ? 'red' : build.state === 'RUNNING' ? 'blue' : 'gray';
        const badge = (
          <Badge key={build.target + build.version} size="sm" color={color} variant={build.state === 'FAILED' ? 'filled' : 'light'} title={build.message ?? build.version}>
            {build.target} {build.state.toLowerCase()}
          </Badge>
        );
        return build.task ? (
          <Link key={build.target + build.version} to={`/tasks/${build.task}`}>
            {badge}
          </Link>
        ) : (
          badge
        );
      })}
    </Group>
  );
}

function Instances({ row }: { row: ServiceRow }) {
  const roles = row.roles.filter((r) => r.role).length;
  return (
    <Text size="sm">
      <Text span c="teal" fw={600}>
        {row.instancesOnDesired}
      </Text>{' '}
      on
      {row.instancesNotOnDesired > 0 && (
        <>
          {' · '}
          <Text span c="orange" fw={600}>
            {row.instancesNotOnDesired}
          </Text>{' '}
          off
        </>
      )}
      {roles > 0 && (
        <Text span c="dimmed" size="xs">
          {` · ${roles} role${roles === 1 ? '' : 's'}`}
        </Text>
      )}
    </Text>
  );
}

/** The instances by role, one line each, for the hint of the instances cell. */
function rolesHint(roles: ServiceRow['roles']): string | undefined {
  if (!roles.some((r) => r.role)) return undefined;
  return roles.map((r) => `${r.role ?? 'no role'}: ${r.instancesOnDesired} on, ${r.instancesNotOnDesired} off`).join('\n');
}

/** A service's rollout under way, in its row: the wave it is in, or halted; a link to it. */
function RolloutMark({ rollout }: { rollout: RolloutRow }) {
  const halted = rollout.state === 'halted';
  return (
    <Link to="/rollouts" title={halted ? 'rollout halted' : `rolling out: wave ${rollout.currentWave}`} data-testid="rollout-mark">
      <Badge size="sm" variant="light" color={halted ? 'red' : 'blue'} tt="none">
        {halted ? 'halted' : `wave ${rollout.currentWave}`}
      </Badge>
    </Link>
  );
}

// The client column has room for a version and its known-bad or rollout mark side by side.
const COLUMNS = '1.3fr 1fr 1.3fr 1.6fr 0.9fr 1.3fr 1fr';

/** One service's row; the poll hands back the same row object while it is unchanged, so
 * an unchanged row is not rendered again. */
const Row = memo(function Row({ row, rollout, start, size }: { row: ServiceRow; rollout: RolloutRow | undefined; start: number; size: number }) {
  return (
    <div
      role="row"
      data-service={row.service}
      style={{ position: 'absolute', top: 0, left: 0, right: 0, transform: `translateY(${start}px)`, height: size, display: 'grid', gridTemplateColumns: COLUMNS, gap: 8, alignItems: 'center', padding: '0 12px', borderBottom: '1px solid var(--mantine-color-default-border)' }}
    >
      <div role="cell">
        <Text fw={600} size="sm">
          {row.service}
        </Text>
      </div>
      <div role="cell">
        <Badge color={SYNC_COLOR[row.sync]} data-testid="sync">
          {row.sync.replace(/_/g, ' ').toLowerCase()}
        </Badge>
      </div>
      <div role="cell">
        <Text size="sm" ff="monospace">
          {row.desiredDeveloperVersion ?? '—'}
        </Text>
      </div>
      <div role="cell">
        <Group gap={4} wrap="nowrap">
          <Text size="sm" ff="monospace" truncate title={row.desiredClientVersion ?? undefined}>
            {row.desiredClientVersion ?? '—'}
          </Text>
          {row.heldBack && <KnownBadMark why={`held back: ${row.heldBack}`} />}
          {rollout && <RolloutMark rollout={rollout} />}
        </Group>
      </div>
      <div role="cell">
        <Group gap={2}>
          <Image present={row.developerImage} label="developer" />
          <Image present={row.clientImage} label="client" />
        </Group>
      </div>
      <div role="cell">
        <Builds row={row} />
      </div>
      <div role="cell" title={rolesHint(row.roles)} data-testid="instances">
        <Instances row={row} />
      </div>
    </div>
  );
});

function ServiceTable({ rows, rollouts }: { rows: ServiceRow[]; rollouts: ReadonlyMap<string, RolloutRow> }) {
  const parent = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({ count: rows.length, getScrollElement: () => parent.current, estimateSize: () => 41, overscan: 12 });
  const header = ['Service', 'Status', 'Developer', 'Client', 'Images', 'Builds', 'Instances'];
  return (
    <Card withBorder p={0}>
      <div role="table" aria-label="Services" aria-rowcount={rows.length + 1}>
        <div role="row" style={{ display: 'grid', gridTemplateColumns: COLUMNS, gap: 8, padding: '8px 12px', fontWeight: 600, borderBottom: '1px solid var(--mantine-color-default-border)' }}>
          {header.map((h) => (
            <div role="columnheader" key={h}>
              {h}
            </div>
          ))}
        </div>
        <div ref={parent} style={{ maxHeight: 'calc(100vh - 330px)', minHeight: 120, overflowY: 'auto' }}>
          <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
            {virtual.getVirtualItems().map((item) => {
              const row = rows[item.index];
              return <Row key={row.service} row={row} rollout={rollouts.get(row.service)} start={item.start} size={item.size} />;
            })}
          </div>
        </div>
      </div>
      {rows.length === 0 && (
        <Text c="dimmed" p="md">
          No service matches.
        </Text>
      )}
    </Card>
  );
}

/** The overview's query; `main.tsx` starts it before the first render when `/` opens. */
export const overviewQuery = { queryKey: ['overview'], queryFn: () => request(Overview) };

export function OverviewPage() {
  const live = useStatusPush(overviewQuery.queryKey);
  const { data, error, isPending } = useQuery({ ...overviewQuery, refetchInterval: live ? POLL_LIVE_MS : POLL_MS });
  const [onlyProblems, setOnlyProblems] = useState(false);
  const [profile, setProfile] = useState<string | null>(null);

  const rows = useMemo(() => {
    if (!data) return [];
    const members = profile ? new Set(data.serviceProfiles.find((p) => p.profile === profile)?.services ?? []) : null;
    return data.status.services.filter((s) => (!onlyProblems || s.sync !== 'SYNCED') && (!members || members.has(s.service)));
  }, [data, onlyProblems, profile]);
  // Rollouts under way, by service; the poll hands back the same objects while unchanged.
  const rollouts = useMemo(() => new Map((data?.status.rollouts ?? []).filter((r) => r.state !== 'done').map((r) => [r.service, r])), [data]);

  if (error) return <Problem error={error} />;
  if (isPending || !data) return <Text c="dimmed">Loading the status…</Text>;
  const { status } = data;
  const repo = status.stateRepo;
  const problems = status.services.filter((s) => s.sync !== 'SYNCED').length;

  return (
    <Stack>
      <Group justify="space-between">
        <Group gap="xs">
          <Title order={2}>Overview</Title>
          <Text size="xs" c="dimmed" data-testid="live" title={live ? 'the server pushes changes' : 'read every 2 s'}>
            {live ? '● live' : 'polling'}
          </Text>
        </Group>
        <Badge size="lg" color={status.synced ? 'teal' : 'orange'} data-testid="fleet-sync">
          {status.synced ? 'all synced' : `${problems} service${problems === 1 ? '' : 's'} need attention`}
        </Badge>
      </Group>
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <Card withBorder>
          <Text size="xs" c="dimmed">
            Commit in force ({repo.branch})
          </Text>
          <Code data-testid="commit-in-force">{short(repo.commit)}</Code>
        </Card>
        <Card withBorder>
          <Text size="xs" c="dimmed">
            Branch tip
          </Text>
          <Code data-testid="branch-tip">{short(repo.tip)}</Code>
        </Card>
        <Card withBorder>
          <Text size="xs" c="dimmed">
            Last checked
          </Text>
          <Text size="sm">{ago(repo.lastFetch)}</Text>
        </Card>
      </SimpleGrid>
      {repo.fetchError && (
        <Alert color="orange" title="The state repo could not be fetched">
          {repo.fetchError}
        </Alert>
      )}
      {repo.lastError && (
        <Alert color="red" title={`Invalid commit ${short(repo.lastError.commit)} (ignored; the last valid commit stays in force)`}>
          {repo.lastError.problems.map((p, i) => (
            <Text key={i} size="sm" ff="monospace">
              {p.file}
              {p.line != null && `:${p.line}`}
              {p.column != null && `:${p.column}`}: {p.message}
            </Text>
          ))}
        </Alert>
      )}
      {rollouts.size > 0 && (
        <Suspense fallback={null}>
          <RolloutList active />
        </Suspense>
      )}
      {data.knownBadVersions.length > 0 && (
        <Suspense fallback={null}>
          <KnownBadVersions list={data.knownBadVersions} />
        </Suspense>
      )}
      <Group>
        <Switch label="Only problems" checked={onlyProblems} onChange={(e) => setOnlyProblems(e.currentTarget.checked)} />
        <Select
          placeholder="Every profile"
          aria-label="Profile"
          data={data.serviceProfiles.map((p) => p.profile)}
          value={profile}
          onChange={setProfile}
          clearable
          w={200}
        />
        <Text size="sm" c="dimmed">
          {rows.length} of {status.services.length} services
        </Text>
      </Group>
      <ServiceTable rows={rows} rollouts={rollouts} />
    </Stack>
  );
}
