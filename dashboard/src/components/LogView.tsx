//! A virtualised list of log lines (thousands stay smooth), coloured by level, that
//! keeps to the bottom while following unless the reader scrolled up.
import { useEffect, useRef } from 'react';
import { Box, Text } from '@mantine/core';
import { useVirtualizer } from '@tanstack/react-virtual';
import { graphql } from '../gql';

/** The fields of a log line the pages fetch. */
export const LogLineFields = graphql(`
  fragment LogLineFields on LogLine {
    sequence
    time
    level
    unit
    message
    service
    instance
    process
    terminationStatus
  }
`);

/** A line as the pages fetch it. */
export interface Line {
  sequence: number;
  time: string;
  level: string;
  unit: string;
  message: string;
  service?: string;
  instance?: string;
  process?: string;
  terminationStatus?: boolean | null;
}

const LEVEL_COLOR: Record<string, string | undefined> = { ERROR: 'red', WARN: 'orange', DEBUG: 'dimmed', TRACE: 'dimmed' };

export function LogView({ lines, follow, showSource = false, height = 'calc(100vh - 320px)' }: { lines: Line[]; follow: boolean; showSource?: boolean; height?: string }) {
  const parent = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const virtual = useVirtualizer({ count: lines.length, getScrollElement: () => parent.current, estimateSize: () => 20, overscan: 30 });

  useEffect(() => {
    if (follow && atBottom.current && lines.length) virtual.scrollToIndex(lines.length - 1, { align: 'end' });
  }, [lines.length, follow, virtual]);

  return (
    <Box
      ref={parent}
      data-testid="log-lines"
      role="log"
      onScroll={(e) => {
        const el = e.currentTarget;
        atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      }}
      style={{ height, minHeight: 200, overflow: 'auto', fontFamily: 'var(--mantine-font-family-monospace)', fontSize: 12, border: '1px solid var(--mantine-color-default-border)', borderRadius: 4 }}
    >
      {lines.length === 0 && (
        <Text c="dimmed" p="sm" size="sm">
          No lines.
        </Text>
      )}
      <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
        {virtual.getVirtualItems().map((item) => {
          const line = lines[item.index];
          return (
            <div
              key={line.sequence}
              data-index={item.index}
              ref={virtual.measureElement}
              className="log-line"
              style={{ position: 'absolute', top: 0, left: 0, right: 0, transform: `translateY(${item.start}px)`, padding: '0 8px', whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}
            >
              <Text span c="dimmed" inherit>
                {line.time.replace('T', ' ').replace('Z', '')}{' '}
              </Text>
              <Text span c={LEVEL_COLOR[line.level]} fw={line.level === 'ERROR' ? 700 : undefined} inherit>
                {line.level.padEnd(5)}{' '}
              </Text>
              {showSource && (
                <Text span c="blue" inherit>
                  {line.service} {line.instance} {line.process}{' '}
                </Text>
              )}
              <Text span c="dimmed" inherit>
                {line.unit}{' '}
              </Text>
              <Text span inherit c={line.terminationStatus === false ? 'red' : line.terminationStatus ? 'teal' : undefined}>
                {line.message}
              </Text>
            </div>
          );
        })}
      </div>
    </Box>
  );
}
