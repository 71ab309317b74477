import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeWorld, type World } from "../support/world";

let world: World;
let id: string;

beforeAll(async () => {
  world = await makeWorld();
  id = await world.backup();
});
afterAll(async () => {
  await world?.cleanup();
});

describe("list", () => {
  it("is listed newest first with its id first on the line", async () => {
    const list = await world.edms(["list"]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")[0].split(/\s+/)[0]).toBe(id);
  });
});
