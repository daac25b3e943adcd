//! Desired versions (developer or client): edit one or many services (versions offered
//! from the records, any new one typed, a known-bad one marked), preview the diff,
//! comment, commit on the revision the page loaded; and the history from Git (author,
//! time, message, per-service changes) with a revert on every row and stepping through
//! revisions.
import { useMemo, useState } from 'react';
import { ActionIcon, Autocomplete, Badge, Button, Card, Code, Group, SegmentedControl, Select, Stack, Table, Tabs, Text, Title, Tooltip } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate, useParams, useSearchParams } from 'react-router';
import { graphql } from '../gql';
import { request } from '../api/client';
import { CommitDialog, type Edit } from '../components/CommitDialog';
import { markerOf } from '../components/KnownBadMark';
import { Problem } from '../components/Problem';
import { desiredDiff, effective, listChanges, type Change, type Entry } from '../lib/diff';
import { short, time } from '../lib/format';
import { loadTip } from '../lib/revision';
import { compareVersions } from '../lib/versions';
import { NotFoundPage } from './NotFound';

const Lists = graphql(`
  query DesiredLists($revision: String) {
    developerDesiredVersions(revision: $revision) {
      service
      version
    }
    clientDesiredVersions(revision: $revision) {
      service
      version
    }
    services(revision: $revision)
    developerVersionsInfo {
      service
      version
    }
    clientVersionsInfo {
      service
      version
    }
    knownBadVersions {
      service
      version
      reason
      instances
    }
  }
`);

const History = graphql(`
  query DesiredHistory($limit: Int!) {
    desiredVersionsHistory(limit: $limit) {
      revision {
        id
        summary
        time
        author {
          name
          email
        }
      }
      developerChanged
      clientChanged
      developer {
        service
        version
      }
      client {
        service
        version
      }
      problems
    }
  }
`);

const SetDeveloper = graphql(`
  mutation SetDeveloperDesired($changes: [ServiceVersionChange!]!, $comment: String!, $expectedRevision: String!) {
    setDeveloperDesiredVersions(changes: $changes, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);

const SetClient = graphql(`
  mutation SetClientDesired($changes: [ServiceVersionChange!]!, $comment: String!, $expectedRevision: String!) {
    setClientDesiredVersions(changes: $changes, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);

const Revert = graphql(`
  mutation Revert($revision: String!, $expectedRevision: String!, $comment: String) {
    revertRevision(revision: $revision, expectedRevision: $expectedRevision, comment: $comment) {
      ...MadeCommit
    }
  }
`);

type Kind = 'developer' | 'client';

/** The page's data, read at the branch tip it loaded. */
async function load() {
  const tip = await loadTip();
  const lists = await request(Lists, { revision: tip });
  return { tip, ...lists };
}

function EditTab({ kind }: { kind: Kind }) {
  const client = useQueryClient();
  const query = useQuery({ queryKey: ['desired', 'lists'], queryFn: load, staleTime: Infinity, refetchOnWindowFocus: false });
  const [changes, setChanges] = useState<Change[]>([]);
  const [adding, setAdding] = useState<string | null>(null);
  const [edit, setEdit] = useState<Edit | null>(null);

  const current: Entry[] = useMemo(() => {
    if (!query.data) return [];
    return kind === 'developer' ? query.data.developerDesiredVersions : query.data.clientDesiredVersions;
  }, [query.data, kind]);
  const versions = useMemo(() => {
    const records = kind === 'developer' ? query.data?.developerVersionsInfo : query.data?.clientVersionsInfo;
    const by = new Map<string, string[]>();
    for (const r of records ?? []) by.set(r.service, [...(by.get(r.service) ?? []), r.version]);
    for (const list of by.values()) list.sort(compareVersions).reverse();
    return by;
  }, [query.data, kind]);

  if (query.error) return <Problem error={query.error} />;
  if (!query.data) return <Text c="dimmed">Loading…</Text>;
  const mark = markerOf(query.data.knownBadVersions);

  // An emptied field is a version being typed, not a change yet.
  const pending = effective(current, changes.filter((c) => c.version !== ''));
  const pendingOf = (service: string) => pending.find((c) => c.service === service);
  const draftOf = (service: string) => changes.findLast((c) => c.service === service);
  const rows = [...current.map((e) => e.service), ...pending.filter((c) => !current.some((e) => e.service === c.service)).map((c) => c.service)].sort();
  const change = (service: string, version: string | null) => setChanges((list) => [...list.filter((c) => c.service !== service), { service, version }]);
  const file = `desired/${kind}.yaml`;

  function buildEdit(list: Entry[]): Edit {
    return {
      title: `Change the desired ${kind} versions`,
      diff: [desiredDiff(file, list, changes.filter((c) => c.version !== ''))],
      commit: async (comment, expectedRevision) => {
        const variables = { changes: effective(list, changes.filter((c) => c.version !== '')), comment, expectedRevision };
        return kind === 'developer'
          ? (await request(SetDeveloper, variables)).setDeveloperDesiredVersions
          : (await request(SetClient, variables)).setClientDesiredVersions;
      },
    };
  }

  async function reapply() {
    const fresh = await query.refetch();
    const list = kind === 'developer' ? fresh.data?.developerDesiredVersions : fresh.data?.clientDesiredVersions;
    setEdit(buildEdit(list ?? []));
  }

  const candidates = (query.data.services ?? []).filter((s) => !rows.includes(s));
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          Editing on revision <Code>{short(query.data.tip)}</Code>; services left out of the client list follow their developer version.
        </Text>
        <Group>
          <Button variant="default" onClick={() => { setChanges([]); void query.refetch(); }}>
            Reload
          </Button>
          <Button disabled={!pending.length} onClick={() => setEdit(buildEdit(current))}>
            Review and commit{pending.length ? ` (${pending.length})` : ''}
          </Button>
        </Group>
      </Group>
      <Table striped highlightOnHover aria-label={`Desired ${kind} versions`}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Service</Table.Th>
            <Table.Th>Now</Table.Th>
            <Table.Th>New version</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((service) => {
            const now = current.find((e) => e.service === service)?.version ?? null;
            const next = pendingOf(service);
            const draft = draftOf(service);
            const value = draft ? (draft.version ?? '') : (now ?? '');
            return (
              <Table.Tr key={service} data-service={service} bg={next ? 'var(--mantine-color-yellow-light)' : undefined}>
                <Table.Td fw={600}>{service}</Table.Td>
                <Table.Td ff="monospace">
                  {now ?? <Text span c="dimmed">(not desired)</Text>} {mark(service, now)}
                </Table.Td>
                <Table.Td>
                  {next?.version === null ? (
                    <Badge color="red">removed</Badge>
                  ) : (
                    <Group gap={4} wrap="nowrap">
                      <Autocomplete
                        aria-label={`New version of ${service}`}
                        data={versions.get(service) ?? []}
                        value={value}
                        onChange={(v) => change(service, v.trim())}
                        w={260}
                        size="xs"
                      />
                      {next && mark(service, next.version)}
                    </Group>
                  )}
                </Table.Td>
                <Table.Td>
                  <Group gap={4} justify="flex-end">
                    {draft && (
                      <Button size="compact-xs" variant="subtle" onClick={() => setChanges((list) => list.filter((c) => c.service !== service))}>
                        Undo
                      </Button>
                    )}
                    {now && next?.version !== null && (
                      <Tooltip label={`Remove ${service} from the list`}>
                        <ActionIcon variant="subtle" color="red" aria-label={`Remove ${service}`} onClick={() => change(service, null)}>
                          ×
                        </ActionIcon>
                      </Tooltip>
                    )}
                  </Group>
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      {candidates.length > 0 && (
        <Group>
          <Select placeholder="Add a service" aria-label="Add a service" data={candidates} value={adding} onChange={setAdding} searchable w={220} />
          <Button
            variant="default"
            disabled={!adding}
            onClick={() => {
              if (adding) change(adding, versions.get(adding)?.[0] ?? '');
              setAdding(null);
            }}
          >
            Add
          </Button>
        </Group>
      )}
      <CommitDialog
        edit={edit}
        revision={query.data.tip}
        onClose={() => setEdit(null)}
        onReapply={reapply}
        onCommitted={() => {
          setChanges([]);
          void client.invalidateQueries({ queryKey: ['desired'] });
          void client.invalidateQueries({ queryKey: ['overview'] });
        }}
      />
    </Stack>
  );
}

function HistoryTab({ kind }: { kind: Kind }) {
  const client = useQueryClient();
  const history = useQuery({ queryKey: ['desired', 'history'], queryFn: () => request(History, { limit: 100 }) });
  const tip = useQuery({ queryKey: ['desired', 'tip'], queryFn: loadTip, staleTime: Infinity, refetchOnWindowFocus: false });
  const [edit, setEdit] = useState<Edit | null>(null);
  const [selected, setSelected] = useState(0);

  if (history.error) return <Problem error={history.error} />;
  if (!history.data) return <Text c="dimmed">Loading…</Text>;
  const all = history.data.desiredVersionsHistory;
  const rows = all
    .map((entry, index) => {
      const before = all.slice(index + 1).find(() => true);
      const list = (e: typeof entry | undefined) => (e ? (kind === 'developer' ? e.developer : e.client) : []);
      return { entry, changes: listChanges(list(before), list(entry)), changed: kind === 'developer' ? entry.developerChanged : entry.clientChanged };
    })
    .filter((r) => r.changed);
  const shown = rows[Math.min(selected, rows.length - 1)];

  function revert(row: (typeof rows)[number]) {
    setEdit({
      title: `Revert ${short(row.entry.revision.id)}`,
      diff: [
        {
          file: `desired/${kind}.yaml`,
          lines: row.changes.flatMap((c) => [
            ...(c.to !== null ? [{ kind: '-' as const, text: `  ${c.service}: ${c.to}` }] : []),
            ...(c.from !== null ? [{ kind: '+' as const, text: `  ${c.service}: ${c.from}` }] : []),
          ]),
        },
      ],
      defaultComment: `Revert "${row.entry.revision.summary}"`,
      commit: async (comment, expectedRevision) =>
        (await request(Revert, { revision: row.entry.revision.id, expectedRevision, comment: comment || null })).revertRevision,
    });
  }

  return (
    <Stack>
      {shown && (
        <Card withBorder>
          <Group justify="space-between">
            <Text size="sm">
              At <Code>{short(shown.entry.revision.id)}</Code> ({time(shown.entry.revision.time)}, {shown.entry.revision.author.name}): {shown.entry.revision.summary}
            </Text>
            <Group gap="xs">
              <Button size="xs" variant="default" disabled={selected >= rows.length - 1} onClick={() => setSelected(selected + 1)}>
                ← Older
              </Button>
              <Button size="xs" variant="default" disabled={selected === 0} onClick={() => setSelected(selected - 1)}>
                Newer →
              </Button>
            </Group>
          </Group>
          <Group gap="xs" mt="xs">
            {(kind === 'developer' ? shown.entry.developer : shown.entry.client).map((e) => (
              <Badge key={e.service} variant="light" tt="none">
                {e.service}: {e.version}
              </Badge>
            ))}
          </Group>
        </Card>
      )}
      <Table striped aria-label="History">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Time</Table.Th>
            <Table.Th>Author</Table.Th>
            <Table.Th>Message</Table.Th>
            <Table.Th>Changes</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((row, index) => (
            <Table.Tr key={row.entry.revision.id} data-revision={row.entry.revision.id} bg={index === selected ? 'var(--mantine-color-default-hover)' : undefined}>
              <Table.Td>
                <Text size="sm">{time(row.entry.revision.time)}</Text>
                <Code>{short(row.entry.revision.id)}</Code>
              </Table.Td>
              <Table.Td>{row.entry.revision.author.name}</Table.Td>
              <Table.Td>{row.entry.revision.summary}</Table.Td>
              <Table.Td>
                {row.changes.map((c) => (
                  <Text key={c.service} size="xs" ff="monospace">
                    {c.service}: {c.from ?? '∅'} → {c.to ?? '∅'}
                  </Text>
                ))}
                {row.entry.problems.map((p) => (
                  <Text key={p} size="xs" c="red">
                    {p}
                  </Text>
                ))}
              </Table.Td>
              <Table.Td>
                <Group gap={4} wrap="nowrap">
                  <Button size="compact-xs" variant="default" onClick={() => setSelected(index)}>
                    View
                  </Button>
                  <Button size="compact-xs" color="orange" variant="light" onClick={() => revert(row)}>
                    Revert
                  </Button>
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <CommitDialog
        edit={edit}
        revision={tip.data}
        onClose={() => setEdit(null)}
        onReapply={async () => {
          await tip.refetch();
          await history.refetch();
        }}
        onCommitted={() => {
          void tip.refetch();
          void client.invalidateQueries({ queryKey: ['desired'] });
        }}
      />
    </Stack>
  );
}

export default function DesiredPage() {
  const { kind } = useParams();
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  if (kind !== 'developer' && kind !== 'client') return <NotFoundPage />;
  const tab = params.get('tab') === 'history' ? 'history' : 'edit';
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Desired versions</Title>
        <SegmentedControl
          value={kind}
          onChange={(value) => navigate(`/desired/${value}${tab === 'history' ? '?tab=history' : ''}`)}
          data={[
            { label: 'Developer', value: 'developer' },
            { label: 'Client', value: 'client' },
          ]}
        />
      </Group>
      <Tabs value={tab} onChange={(value) => setParams(value === 'history' ? { tab: 'history' } : {})} keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="edit">Edit</Tabs.Tab>
          <Tabs.Tab value="history">History</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="edit" pt="md">
          <EditTab key={kind} kind={kind} />
        </Tabs.Panel>
        <Tabs.Panel value="history" pt="md">
          <HistoryTab key={kind} kind={kind} />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
