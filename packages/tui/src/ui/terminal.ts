import type { Key } from 'ink';
import { useStdout } from 'ink';
import { useEffect, useState } from 'react';
import type { Keypress } from '../machines/keys.js';

/** The terminal's size, following resizes; 80x24 when the stream does not say. */
export function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => {
      const next = { columns: stdout.columns || 80, rows: stdout.rows || 24 };
      setSize((s) => (s.columns === next.columns && s.rows === next.rows ? s : next));
    };
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}

/** Ink's key report -> the machines' keypress; null for keys the console does not use. */
export function toKeypress(input: string, k: Key): Keypress | null {
  if (k.upArrow) return { name: 'up' };
  if (k.downArrow) return { name: 'down' };
  if (k.leftArrow) return { name: 'left' };
  if (k.rightArrow) return { name: 'right' };
  if (k.pageUp) return { name: 'pageup' };
  if (k.pageDown) return { name: 'pagedown' };
  if (k.home) return { name: 'home' };
  if (k.end) return { name: 'end' };
  if (k.return) return { name: 'enter' };
  if (k.escape) return { name: 'escape' };
  if (k.tab) return { name: 'tab' };
  if (k.backspace || k.delete) return { name: 'backspace' };
  if (k.ctrl || k.meta || input === '') return null;
  return { name: 'char', char: input };
}
