//! Service and task logs: filters (service, instance, directory, process, level, time
//! range, text), paging back and forward, following live, and downloading the filtered
//! lines as a file (`GET /logs/download`).
import { useEffect, useMemo, useRef, useState } from 'react';
import { Button, Group, Select, Stack, Switch, Text, TextInput, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery } from '@tanstack/react-query';
import { useSearchParams } from 'react-router';
import { graphql } from '../gql';
import type { LogFilter, LogValueField } from '../gql/graphql';
import { describe, download, request } from '../api/client';
import { subscribe } from '../api/live';
import { LogView, type Line } from '../components/LogView';
import { Problem } from '../components/Problem';

const Values = graphql(`
  query LogValues($field: LogValueField!, $filter: LogFilter!) {
    logValues(field: $field, filter: $filter)
  }
`);

const Page = graphql(`
  query LogPage($filter: LogFilter!, $after: Int, $before: Int, $limit: Int!) {
    logs(filter: $filter, after: $after, before: $before, limit: $limit) {
      ...LogLineFields
    }
  }
`);

const Follow = graphql(`
  subscription FollowLogs($filter: LogFilter!, $after: Int) {
    logs(filter: $filter, after: $after) {
      ...LogLineFields
    }
  }
`);

const PAGE = 500;
const FIELDS = ['service', 'instance', 'directory', 'process', 'task', 'minLevel', 'find', 'fromTime', 'toTime'] as const;
type Field = (typeof FIELDS)[number];

/** The filter as the URL keeps it (so a filtered view can be shared and reloaded). */
function filterOf(params: URLSearchParams): LogFilter {
  const filter: LogFilter = {};
  for (const field of FIELDS) {
    const value = params.get(field);
    if (!value) continue;
    filter[field] = field === 'fromTime' || field === 'toTime' ? new Date(value).toISOString() : value;
  }
  return filter;
}

/** `GET /logs/download` parameters for a filter. */
export function downloadPath(filter: LogFilter): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) if (value) query.set(key, String(value));
  const text = query.toString();
  return `/logs/download${text ? `?${text}` : ''}`;
}

function ValueSelect({ field, label, filter, value, onChange }: { field: LogValueField; label: string; filter: LogFilter; value: string | null; onChange: (v: string | null) => void }) {
  const { data } = useQuery({ queryKey: ['logValues', field, filter], queryFn: () => request(Values, { field, filter }), staleTime: 10_000 });
  return <Select label={label} placeholder="any" data={data?.logValues ?? (value ? [value] : [])} value={value} onChange={onChange} clearable searchable w={170} />;
}

export default function LogsPage() {
  const [params, setParams] = useSearchParams();
  const filter = useMemo(() => filterOf(params), [params]);
  const [lines, setLines] = useState<Line[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [follow, setFollow] = useState(false);
  const [more, setMore] = useState({ older: false });
  const [find, setFind] = useState(params.get('find') ?? '');
  const newest = useRef(0);

  const set = (field: Field, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(field, value);
    else next.delete(field);
    // A narrower choice depends on the wider one.
    if (field === 'service') ['instance', 'directory', 'process'].forEach((f) => next.delete(f));
    if (field === 'instance') ['directory', 'process'].forEach((f) => next.delete(f));
    setParams(next, { replace: true });
  };
  const scope = (...fields: Field[]) => Object.fromEntries(fields.filter((f) => filter[f]).map((f) => [f, filter[f]])) as LogFilter;

  // The newest page for the filter.
  useEffect(() => {
    let gone = false;
    setError(null);
    request(Page, { filter, limit: PAGE })
      .then(({ logs }) => {
        if (gone) return;
        const ordered = [...logs].reverse();
        setLines(ordered);
        newest.current = ordered.at(-1)?.sequence ?? 0;
        setMore({ older: logs.length === PAGE });
      })
      .catch((e) => !gone && setError(e));
    return () => {
      gone = true;
    };
  }, [filter]);

  useEffect(() => {
    if (!follow) return;
    return subscribe(Follow, { filter, after: newest.current || null }, {
      onData: ({ logs }) => {
        setLines((old) => {
          const seen = old.at(-1)?.sequence ?? 0;
          const fresh = logs.filter((l) => l.sequence > seen);
          if (fresh.length) newest.current = fresh.at(-1)!.sequence;
          return [...old, ...fresh];
        });
      },
      onError: (message) => setError(new Error(message)),
    });
  }, [follow, filter]);

  async function older() {
    const before = lines[0]?.sequence;
    if (!before) return;
    try {
      const { logs } = await request(Page, { filter, before, limit: PAGE });
      setLines((old) => [...[...logs].reverse(), ...old]);
      setMore({ older: logs.length === PAGE });
    } catch (e) {
      setError(e);
    }
  }

  async function newer() {
    try {
      const { logs } = await request(Page, { filter, after: newest.current, limit: PAGE });
      if (logs.length) newest.current = logs.at(-1)!.sequence;
      setLines((old) => [...old, ...logs]);
    } catch (e) {
      setError(e);
    }
  }

  async function save() {
    const what = filter.task ?? filter.service ?? 'all';
    try {
      const size = await download(downloadPath(filter), `logs-${what}.log`);
      notifications.show({ color: 'teal', title: 'Downloaded', message: `${size} bytes` });
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `Download refused (${code})`, message });
    }
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Logs</Title>
        <Group>
          <Switch label="Follow live" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
          <Button variant="default" onClick={save}>
            Download
          </Button>
        </Group>
      </Group>
      <Group align="flex-end" gap="xs">
        <ValueSelect field="SERVICE" label="Service" filter={{}} value={filter.service ?? null} onChange={(v) => set('service', v)} />
        <ValueSelect field="INSTANCE" label="Instance" filter={scope('service')} value={filter.instance ?? null} onChange={(v) => set('instance', v)} />
        <ValueSelect field="DIRECTORY" label="Directory" filter={scope('service', 'instance')} value={filter.directory ?? null} onChange={(v) => set('directory', v)} />
        <ValueSelect field="PROCESS" label="Process" filter={scope('service', 'instance', 'directory')} value={filter.process ?? null} onChange={(v) => set('process', v)} />
        <Select label="Level" placeholder="any" data={['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']} value={filter.minLevel ?? null} onChange={(v) => set('minLevel', v)} clearable w={110} />
        <TextInput label="From" type="datetime-local" value={params.get('fromTime') ?? ''} onChange={(e) => set('fromTime', e.currentTarget.value)} w={200} />
        <TextInput label="To" type="datetime-local" value={params.get('toTime') ?? ''} onChange={(e) => set('toTime', e.currentTarget.value)} w={200} />
        <TextInput
          label="Text"
          placeholder="contains…"
          value={find}
          onChange={(e) => setFind(e.currentTarget.value)}
          onKeyDown={(e) => e.key === 'Enter' && set('find', find)}
          onBlur={() => find !== (params.get('find') ?? '') && set('find', find)}
          w={180}
        />
      </Group>
      {filter.task && (
        <Text size="sm">
          Task <code>{filter.task}</code>{' '}
          <Button size="compact-xs" variant="subtle" onClick={() => set('task', null)}>
            clear
          </Button>
        </Text>
      )}
      <Problem error={error} />
      <Group gap="xs">
        <Button size="xs" variant="default" onClick={older} disabled={!more.older}>
          ↑ Older
        </Button>
        <Button size="xs" variant="default" onClick={newer} disabled={follow}>
          ↓ Newer
        </Button>
        <Text size="sm" c="dimmed" data-testid="line-count">
          {lines.length} lines
        </Text>
      </Group>
      <LogView lines={lines} follow={follow} showSource={!filter.process} />
    </Stack>
  );
}
