// The official MCP TypeScript SDK client against `flowkit serve --demo`.
// Usage: node ts_client.mjs SDK_DIR URL — prints one JSON line describing what it saw.
// Run by tests/integration/flowkit_redis/test_serve.py through nginx round-robin.
const [sdk, url] = process.argv.slice(2);
const { Client } = await import(`file://${sdk}/dist/esm/client/index.js`);
const { StreamableHTTPClientTransport } = await import(
  `file://${sdk}/dist/esm/client/streamableHttp.js`
);

const client = new Client({ name: "flowkit-ts-test", version: "0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const tools = await client.listTools();
const progress = [];
const result = await client.callTool(
  { name: "ticker", arguments: { count: 50 } },
  undefined,
  { onprogress: (p) => progress.push(p.progress) },
);
const words = await client.callTool({
  name: "analyze_document",
  arguments: { text: "One. Two words." },
});
await client.close();
console.log(
  JSON.stringify({
    protocol: client.transport?.protocolVersion ?? null,
    tools: tools.tools.map((t) => t.name),
    structured: result.structuredContent,
    progress,
    words_is_error: words.isError ?? false,
  }),
);
