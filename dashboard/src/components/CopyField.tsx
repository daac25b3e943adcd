//! A value to paste elsewhere (an install line, a key pin): shown whole in monospace,
//! with a button that copies it and says so.
import { Button, Code, CopyButton, Group, Text } from '@mantine/core';

/** `value` under `label`, with a copy button named "Copy <what>". */
export function CopyField({ label, what, value, testId }: { label: string; what: string; value: string; testId?: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Group gap="xs" wrap="nowrap" align="flex-start">
        <Code block data-testid={testId} style={{ flex: 1, whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
          {value}
        </Code>
        <CopyButton value={value}>
          {({ copied, copy }) => (
            // A fixed width, so "Copied" does not shift the layout.
            <Button size="xs" variant={copied ? 'light' : 'default'} color={copied ? 'teal' : undefined} onClick={copy} aria-label={`Copy ${what}`} w={88}>
              {copied ? 'Copied' : 'Copy'}
            </Button>
          )}
        </CopyButton>
      </Group>
    </div>
  );
}
