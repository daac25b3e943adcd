//! A task monitor: what the task is, its log from the first line, followed live over
//! the `logs` subscription until the task's last line, and a cancel button while it runs.
import { useEffect, useState } from 'react';
import { Badge, Button, Card, Code, Group, Stack, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { graphql } from '../gql';
import { describe, request } from '../api/client';
import { subscribe } from '../api/live';
import { LogView, type Line } from '../components/LogView';
import { Problem } from '../components/Problem';
import { time } from '../lib/format';

const TaskInfo = graphql(`
  query TaskInfo($id: String!) {
    tasks(id: $id, limit: 1) {
      id
      type
      services
      parameters {
        name
        value
      }
      creationTime
      terminationTime
      terminationStatus
      active
    }
  }
`);

const TaskLog = graphql(`
  query TaskLog($task: String!, $after: Int!) {
    logs(filter: { task: $task }, after: $after, limit: 10000) {
      ...LogLineFields
    }
  }
`);

const FollowTask = graphql(`
  subscription FollowTask($task: String!, $after: Int!) {
    logs(filter: { task: $task }, after: $after) {
      ...LogLineFields
    }
  }
`);

const Cancel = graphql(`
  mutation CancelTask($task: String!) {
    cancelTask(task: $task)
  }
`);

export default function TaskPage() {
  const { id = '' } = useParams();
  const client = useQueryClient();
  const info = useQuery({ queryKey: ['task', id], queryFn: () => request(TaskInfo, { id }), refetchInterval: (q) => (q.state.data?.tasks[0]?.active === false ? false : 3_000) });
  const [lines, setLines] = useState<Line[]>([]);
  const [live, setLive] = useState<'loading' | 'following' | 'ended' | string>('loading');
  const [cancelling, setCancelling] = useState(false);

  useEffect(() => {
    let stop: (() => void) | null = null;
    let gone = false;
    setLines([]);
    setLive('loading');
    (async () => {
      // What is stored so far, oldest first, then everything after it, live.
      const { logs } = await request(TaskLog, { task: id, after: 0 });
      if (gone) return;
      setLines(logs);
      const last = logs.at(-1)?.sequence ?? 0;
      if (logs.some((l) => l.terminationStatus != null)) {
        setLive('ended');
        return;
      }
      setLive('following');
      stop = subscribe(FollowTask, { task: id, after: last }, {
        onData: ({ logs: batch }) => {
          setLines((old) => {
            const seen = old.at(-1)?.sequence ?? 0;
            return [...old, ...batch.filter((l) => l.sequence > seen)];
          });
        },
        onError: (message) => setLive(`live log failed: ${message}`),
        onComplete: () => {
          setLive('ended');
          void client.invalidateQueries({ queryKey: ['task', id] });
        },
      });
    })().catch((e) => setLive(`log failed: ${describe(e).message}`));
    return () => {
      gone = true;
      stop?.();
    };
  }, [id, client]);

  async function cancel() {
    setCancelling(true);
    try {
      await request(Cancel, { task: id });
      notifications.show({ color: 'orange', title: 'Cancelling', message: `Task ${id} is being stopped` });
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `Not cancelled (${code})`, message });
    } finally {
      setCancelling(false);
      void info.refetch();
    }
  }

  const task = info.data?.tasks[0];
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>
          Task <Code fz="lg">{id}</Code>
        </Title>
        <Group>
          <Button component={Link} to="/tasks" variant="default">
            All tasks
          </Button>
          {task?.active && (
            <Button color="red" onClick={cancel} loading={cancelling}>
              Cancel
            </Button>
          )}
        </Group>
      </Group>
      {info.error && <Problem error={info.error} />}
      {info.data && !task && <Problem error={new Error(`No task ${id}`)} title="Not found" />}
      {task && (
        <Card withBorder>
          <Group>
            <Text fw={600}>{task.type}</Text>
            <Text>{task.services.join(', ')}</Text>
            <Badge data-testid="task-state" color={task.active ? 'blue' : task.terminationStatus ? 'teal' : 'red'}>
              {task.active ? 'running' : task.terminationStatus ? 'succeeded' : 'failed'}
            </Badge>
            <Text size="sm" c="dimmed">
              started {time(task.creationTime)}
              {task.terminationTime && `, ended ${time(task.terminationTime)}`}
            </Text>
          </Group>
          <Group gap="xs" mt="xs">
            {task.parameters.map((p) => (
              <Badge key={p.name} variant="light" tt="none">
                {p.name}: {p.value}
              </Badge>
            ))}
          </Group>
        </Card>
      )}
      <Text size="sm" c="dimmed" data-testid="live-state">
        {live === 'following' ? 'Following the log live…' : live === 'ended' ? 'The task ended.' : live}
      </Text>
      <LogView lines={lines} follow={live === 'following'} />
    </Stack>
  );
}
