import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  method: string;
  path: string;
  contentType: string;
  body: string;
  /** When the answer went out (Date.now()), once it has. */
  answeredAt?: number;
}

/**
 * A small HTTP receiver on loopback that records every request, as a ping service or a
 * webhook endpoint would see it. `delayMs` holds every answer back (a slow receiver);
 * `status` is the answer's status.
 */
export async function startReceiver(options: { delayMs?: number; status?: number } = {}) {
  const received: Received[] = [];
  const waiting: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const request: Received = { method: req.method ?? "", path: req.url ?? "", contentType: String(req.headers["content-type"] ?? ""), body: Buffer.concat(chunks).toString() };
      received.push(request);
      waiting.splice(0).forEach((wake) => wake());
      setTimeout(() => {
        request.answeredAt = Date.now();
        res.writeHead(options.status ?? 200).end("OK");
      }, options.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    /** Waits until `count` requests have arrived (or `seconds` have passed). */
    async until(count: number, seconds = 30): Promise<Received[]> {
      const end = Date.now() + seconds * 1000;
      while (received.length < count && Date.now() < end) {
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          setTimeout(resolve, 200);
        });
      }
      return received;
    },
    close: () => new Promise<void>((resolve) => server.closeAllConnections() ?? server.close(() => resolve())),
  };
}
