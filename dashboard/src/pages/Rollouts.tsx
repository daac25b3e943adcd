//! Rollouts: each service's newest rollout by waves (`waves` in rollout.yaml), finished
//! ones included, as the overview shows those under way.
import { Code, Stack, Text, Title } from '@mantine/core';
import RolloutList from '../components/Rollouts';

export default function RolloutsPage() {
  return (
    <Stack>
      <Title order={2}>Rollouts</Title>
      <Text size="sm" c="dimmed">
        A new desired client version of a service with <Code>waves</Code> in rollout.yaml goes to one wave after the other: the next wave gets it once every instance of the current one has run it for the wave&apos;s healthyFor.
      </Text>
      <RolloutList />
    </Stack>
  );
}
