// Types of scripts/edms.mjs, for the tests that import it.
export const runtimeMount: string;
export function dockerArgs(root: string, stack: string, args: string[], options?: { tty?: boolean }): string[];
