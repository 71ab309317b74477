import { defineConfig } from "vitest/config";

// Three suites: unit (Pulumi mocks, no services), runtime (edms-backup against throwaway
// PostgreSQL clusters on this host) and e2e (real Docker daemons).
export default defineConfig({
  test: {
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
          // One Docker daemon (two for migration) on two cores: one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
