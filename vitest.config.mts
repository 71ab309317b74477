import { defineConfig } from "vitest/config";

// Three suites: unit (Pulumi mocks, no services), runtime (edms-backup against throwaway
// PostgreSQL clusters on this host) and e2e (real Docker daemons).
export default defineConfig({
  test: {
    // Two files at a time, of any suite: they wait on servers, daemons, cron minutes and
    // kills far more than they compute (one worker kept 2 cores 35% busy), and each file has
    // its own clusters, folders, ports, containers and networks.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "runtime",
          include: ["test/runtime/**/*.test.ts"],
          globalSetup: ["test/runtime/setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/e2e/setup.ts"],
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
