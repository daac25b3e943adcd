//! The overview: the commit in force, the branch tip, the last invalid commit with
//! file:line:column, and per service its desired versions, images, builds and instances
//! on or off the desired version. Refreshed every two seconds; the service table is
//! virtualised so 200 services with 2,000 instances stay responsive.
import { useMemo, useRef, useState } from 'react';
import { Alert, Badge, Card, Code, Group, Select, SimpleGrid, Stack, Switch, Text, Title, Tooltip } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Link } from 'react-router';
import { graphql } from '../gql';
import type { OverviewQuery } from '../gql/graphql';
import { request } from '../api/client';
import { Problem } from '../components/Problem';
import { ago, short } from '../lib/format';

const Overview = graphql(`
  query Overview {
    status {
      synced
      reconciledCommit
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
        developerImage
        clientImage
        instancesOnDesired
        instancesNotOnDesired
        builds {
          target
          version
          state
          task
          message
        }
      }
    }
    serviceProfiles {
      profile
      services
    }
  }
`);

type ServiceRow = OverviewQuery['status']['services'][number];

const SYNC_COLOR: Record<string, string> = {
  SYNCED: 'teal',
  BUILDING: 'blue',
  BUILD_FAILED: 'red',
  OUT_OF_SYNC: 'orange',
};

function Image({ present, label }: { present: boolean | null | undefined; label: string }) {
  if (present == null) return <Text span c="dimmed">—</Text>;
  return (
    <Tooltip label={present ? `${label} image stored` : `no ${label} image yet`}>
      <Badge size="sm" variant="light" color={present ? 'teal' : 'gray'}>
        {present ? 'image' : 'no image'}
      </Badge>
    </Tooltip>
  );
}

function Builds({ row }: { row: ServiceRow }) {
  if (!row.builds.length) return <Text span c="dimmed">—</Text>;
  return (
    <Group gap={4}>
      {row.builds.map((build) => {
        const color = build.state === 'FAILED' ? 'red' : build.state === 'RUNNING' ? 'blue' : 'gray';
        const badge = (
          <Badge size="sm" color={color} variant={build.state === 'FAILED' ? 'filled' : 'light'}>
            {build.target} {build.state.toLowerCase()}
          </Badge>
        );
        return (
          <Tooltip key={build.target + build.version} label={build.message ?? build.version}>
            {build.task ? <Link to={`/tasks/${build.task}`}>{badge}</Link> : badge}
          </Tooltip>
        );
      })}
    </Group>
  );
}

const COLUMNS = '1.3fr 1fr 1.3fr 1.3fr 0.9fr 1.6fr 1fr';

function ServiceTable({ rows }: { rows: ServiceRow[] }) {
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
              return (
                <div
                  role="row"
                  key={row.service}
                  data-service={row.service}
                  style={{ position: 'absolute', top: 0, left: 0, right: 0, transform: `translateY(${item.start}px)`, height: item.size, display: 'grid', gridTemplateColumns: COLUMNS, gap: 8, alignItems: 'center', padding: '0 12px', borderBottom: '1px solid var(--mantine-color-default-border)' }}
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
                    <Text size="sm" ff="monospace">
                      {row.desiredClientVersion ?? '—'}
                    </Text>
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
                  <div role="cell">
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
                    </Text>
                  </div>
                </div>
              );
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
  const { data, error, isPending } = useQuery({ ...overviewQuery, refetchInterval: 2_000 });
  const [onlyProblems, setOnlyProblems] = useState(false);
  const [profile, setProfile] = useState<string | null>(null);

  const rows = useMemo(() => {
    if (!data) return [];
    const members = profile ? new Set(data.serviceProfiles.find((p) => p.profile === profile)?.services ?? []) : null;
    return data.status.services.filter((s) => (!onlyProblems || s.sync !== 'SYNCED') && (!members || members.has(s.service)));
  }, [data, onlyProblems, profile]);

  if (error) return <Problem error={error} />;
  if (isPending || !data) return <Text c="dimmed">Loading the status…</Text>;
  const { status } = data;
  const repo = status.stateRepo;
  const problems = status.services.filter((s) => s.sync !== 'SYNCED').length;

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Overview</Title>
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
      <ServiceTable rows={rows} />
    </Stack>
  );
}
