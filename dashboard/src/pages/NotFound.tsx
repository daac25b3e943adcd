//! The 404 page, and the page shown for a URL the account's role may not use.
import { Button, Stack, Text, Title } from '@mantine/core';
import { Link } from 'react-router';

export function NotFoundPage() {
  return (
    <Stack align="flex-start" p="md">
      <Title order={2}>Page not found</Title>
      <Text c="dimmed">There is no page at this address.</Text>
      <Button component={Link} to="/">
        Go to the overview
      </Button>
    </Stack>
  );
}

export function NotAllowedPage() {
  return (
    <Stack align="flex-start" p="md">
      <Title order={2}>Not allowed</Title>
      <Text c="dimmed">Your account's role may not use this page; an administrator can change your role.</Text>
      <Button component={Link} to="/">
        Go to the overview
      </Button>
    </Stack>
  );
}
