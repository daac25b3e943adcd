//! Builds: per service the desired developer version, the last developer and client
//! builds and the builds under way; start a developer build (the next version prefilled,
//! a comment, as a commit), make the next client generation, mark a version tested,
//! and retry the failed builds.
import { useMemo, useState } from 'react';
import { Badge, Button, Group, Modal, Stack, Table, Text, TextInput, Textarea, Title, Tooltip } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate } from 'react-router';
import { graphql } from '../gql';
import type { BuildsQuery } from '../gql/graphql';
import { describe, request } from '../api/client';
import { CommitDialog, type Edit } from '../components/CommitDialog';
import { Problem } from '../components/Problem';
import { time } from '../lib/format';
import { loadTip } from '../lib/revision';
import { compareVersions, nextBuild } from '../lib/versions';

const Builds = graphql(`
  query Builds {
    distributionInfo {
      distribution
    }
    services
    status {
      services {
        service
        desiredDeveloperVersion
        desiredClientVersion
        builds {
          target
          version
          state
          task
          message
        }
      }
    }
    developerVersionsInfo {
      service
      version
      buildInfo {
        author
        time
        comment
      }
    }
    clientVersionsInfo {
      service
      version
      installInfo {
        author
        time
      }
    }
    testedVersions {
      distribution
      versions {
        service
        version
      }
    }
  }
`);

const BuildDeveloper = graphql(`
  mutation BuildDeveloper($service: String!, $version: String, $comment: String!, $expectedRevision: String!) {
    buildDeveloperVersion(service: $service, version: $version, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);

const LastCommit = graphql(`
  query LastSourceCommit($service: String!) {
    lastSourceCommit(service: $service) {
      id
      author
      message
    }
  }
`);

const Rebuild = graphql(`
  mutation RebuildClient($service: String!) {
    rebuildClientVersion(service: $service)
  }
`);

const MarkTested = graphql(`
  mutation MarkTested($versions: [ServiceVersionChange!]!, $comment: String!, $expectedRevision: String!) {
    setTestedVersions(versions: $versions, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);

const Retry = graphql(`
  mutation RetryFailedBuilds {
    retryFailedBuilds
  }
`);

type Data = BuildsQuery;

function latest<T extends { service: string; version: string }>(records: T[], service: string): T | undefined {
  return records.filter((r) => r.service === service).sort((a, b) => compareVersions(a.version, b.version)).at(-1);
}

export default function BuildsPage() {
  const client = useQueryClient();
  const navigate = useNavigate();
  const { data, error, refetch } = useQuery({ queryKey: ['builds'], queryFn: () => request(Builds), refetchInterval: 3_000 });
  const tip = useQuery({ queryKey: ['builds', 'tip'], queryFn: loadTip, staleTime: Infinity, refetchOnWindowFocus: false });
  const [starting, setStarting] = useState<string | null>(null);
  const [version, setVersion] = useState('');
  const [comment, setComment] = useState('');
  const [reading, setReading] = useState(false);
  const [edit, setEdit] = useState<Edit | null>(null);

  const tested = useMemo(() => {
    const set = new Set<string>();
    const own = data?.testedVersions.find((t) => t.distribution === data.distributionInfo.distribution);
    own?.versions.forEach((v) => set.add(`${v.service} ${v.version}`));
    return set;
  }, [data]);

  if (error) return <Problem error={error} />;
  if (!data) return <Text c="dimmed">Loading…</Text>;
  const distribution = data.distributionInfo.distribution;

  function openStart(service: string, d: Data) {
    setVersion(nextBuild(distribution, d.developerVersionsInfo.filter((v) => v.service === service).map((v) => v.version)));
    setComment('');
    setStarting(service);
  }

  async function lastCommitComment(service: string) {
    setReading(true);
    try {
      const { lastSourceCommit } = await request(LastCommit, { service });
      setComment(lastSourceCommit.message);
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `No last commit (${code})`, message });
    } finally {
      setReading(false);
    }
  }

  function startEdit(service: string) {
    const current = data?.status.services.find((s) => s.service === service)?.desiredDeveloperVersion;
    const chosen = version.trim();
    setStarting(null);
    setEdit({
      title: `Build ${service} ${chosen}`,
      diff: [
        {
          file: 'desired/developer.yaml',
          lines: [...(current ? [{ kind: '-' as const, text: `  ${service}: ${current}` }] : []), { kind: '+' as const, text: `  ${service}: ${chosen}` }],
        },
      ],
      defaultComment: comment,
      commit: async (text, expectedRevision) => (await request(BuildDeveloper, { service, version: chosen || null, comment: text, expectedRevision })).buildDeveloperVersion,
    });
  }

  function markTested(service: string, developerVersion: string) {
    setEdit({
      title: `Mark ${service} ${developerVersion} as tested`,
      diff: [{ file: 'tested.yaml', lines: [{ kind: '+', text: `  ${service}: ${developerVersion}  (tested by ${distribution})` }] }],
      defaultComment: `${service} ${developerVersion} tested`,
      commit: async (comment, expectedRevision) => (await request(MarkTested, { versions: [{ service, version: developerVersion }], comment, expectedRevision })).setTestedVersions,
    });
  }

  async function rebuild(service: string) {
    try {
      const { rebuildClientVersion: task } = await request(Rebuild, { service });
      if (task) navigate(`/tasks/${task}`);
      else notifications.show({ title: 'Nothing to build', message: `${service}: its client version is current` });
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `Not started (${code})`, message });
    }
  }

  async function retry() {
    try {
      await request(Retry);
      notifications.show({ color: 'teal', title: 'Retrying', message: 'Failed builds are tried again' });
      void refetch();
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `Refused (${code})`, message });
    }
  }

  const failed = data.status.services.some((s) => s.builds.some((b) => b.state === 'FAILED'));
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Builds</Title>
        <Group>
          <Button component={Link} to="/tasks" variant="default">
            Tasks
          </Button>
          <Button color="orange" variant="light" onClick={retry} disabled={!failed}>
            Retry failed builds
          </Button>
        </Group>
      </Group>
      <Table striped highlightOnHover aria-label="Builds">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Service</Table.Th>
            <Table.Th>Last developer build</Table.Th>
            <Table.Th>Last client version</Table.Th>
            <Table.Th>Under way</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {data.services.map((service) => {
            const s = data.status.services.find((x) => x.service === service) ?? { service, desiredDeveloperVersion: null, desiredClientVersion: null, builds: [] };
            const dev = latest(data.developerVersionsInfo, s.service);
            const cli = latest(data.clientVersionsInfo, s.service);
            const desired = s.desiredDeveloperVersion;
            return (
              <Table.Tr key={s.service} data-service={s.service}>
                <Table.Td fw={600}>{s.service}</Table.Td>
                <Table.Td>
                  {dev ? (
                    <>
                      <Text size="sm" ff="monospace">
                        {dev.version} {tested.has(`${s.service} ${dev.version}`) && <Badge size="xs" color="teal">tested</Badge>}
                      </Text>
                      <Text size="xs" c="dimmed">
                        {dev.buildInfo.author}, {time(dev.buildInfo.time)}: {dev.buildInfo.comment}
                      </Text>
                    </>
                  ) : (
                    <Text c="dimmed">—</Text>
                  )}
                </Table.Td>
                <Table.Td>
                  {cli ? (
                    <>
                      <Text size="sm" ff="monospace">
                        {cli.version}
                      </Text>
                      <Text size="xs" c="dimmed">
                        {cli.installInfo.author}, {time(cli.installInfo.time)}
                      </Text>
                    </>
                  ) : (
                    <Text c="dimmed">—</Text>
                  )}
                </Table.Td>
                <Table.Td>
                  {s.builds.map((b) => (
                    <Tooltip key={b.target + b.version} label={b.message ?? b.version}>
                      <Badge color={b.state === 'FAILED' ? 'red' : b.state === 'RUNNING' ? 'blue' : 'gray'}>
                        {b.task ? <Link to={`/tasks/${b.task}`}>{`${b.target} ${b.version} ${b.state.toLowerCase()}`}</Link> : `${b.target} ${b.version} ${b.state.toLowerCase()}`}
                      </Badge>
                    </Tooltip>
                  ))}
                </Table.Td>
                <Table.Td>
                  <Group gap={4} justify="flex-end" wrap="nowrap">
                    <Button size="compact-sm" onClick={() => openStart(s.service, data)}>
                      Start build
                    </Button>
                    <Button size="compact-sm" variant="default" onClick={() => rebuild(s.service)} disabled={!s.desiredClientVersion}>
                      Rebuild client
                    </Button>
                    {desired && (
                      <Button size="compact-sm" variant="default" onClick={() => markTested(s.service, desired)} disabled={tested.has(`${s.service} ${desired}`)}>
                        Mark tested
                      </Button>
                    )}
                  </Group>
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      <Modal opened={starting != null} onClose={() => setStarting(null)} title={`Start a developer build of ${starting}`}>
        <Stack>
          <TextInput label="Version" description="The next build of this distribution; change it if you need another." value={version} onChange={(e) => setVersion(e.currentTarget.value)} data-autofocus />
          <Textarea label="Comment" value={comment} onChange={(e) => setComment(e.currentTarget.value)} autosize minRows={2} />
          <Group>
            <Button size="xs" variant="default" loading={reading} onClick={() => starting && lastCommitComment(starting)}>
              Last commit comment
            </Button>
            <Text size="xs" c="dimmed">
              the newest commit message of the service's first source repository
            </Text>
          </Group>
          <Text size="sm" c="dimmed">
            The build is a commit that sets the desired developer version; the reconcile loop builds it.
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setStarting(null)}>
              Cancel
            </Button>
            <Button onClick={() => starting && startEdit(starting)} disabled={!version.trim()}>
              Review
            </Button>
          </Group>
        </Stack>
      </Modal>
      <CommitDialog
        edit={edit}
        revision={tip.data}
        onClose={() => setEdit(null)}
        onReapply={async () => {
          await tip.refetch();
        }}
        onCommitted={() => {
          void tip.refetch();
          void client.invalidateQueries({ queryKey: ['builds'] });
        }}
      />
    </Stack>
  );
}
