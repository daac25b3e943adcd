//! An error as the server said it: its message and stable code.
import { Alert } from '@mantine/core';
import { describe } from '../api/client';

export function Problem({ error, title = 'The distribution refused' }: { error: unknown; title?: string }) {
  if (!error) return null;
  const { code, message } = describe(error);
  return (
    <Alert color="red" title={title} role="alert">
      {message} <code>({code})</code>
    </Alert>
  );
}
