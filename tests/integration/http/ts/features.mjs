// Resources, a live resource's updates, prompts and completion through the
// official MCP TypeScript SDK client (its Streamable HTTP transport).
//
// Usage: node features.mjs SDK_DIST URL — SDK_DIST is the SDK's dist/esm
// directory (file path). Prints one JSON line describing what it saw.

const [sdk, url] = process.argv.slice(2);
const load = (path) => import(new URL(`file://${sdk}/${path}`).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
const { ResourceUpdatedNotificationSchema } = await load("types.js");

const LIVE = "sensor://temperature";
const client = new Client({ name: "flowkit-ts-test", version: "0" });
let updated;
const gotUpdate = new Promise((resolve) => (updated = resolve));
const updates = [];
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (note) => {
  updates.push(note.params.uri);
  updated();
});
await client.connect(new StreamableHTTPClientTransport(new URL(url)));

const out = {};
out.capabilities = client.getServerCapabilities();
out.resources = (await client.listResources()).resources.map((r) => r.uri);
out.templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
out.text = (await client.readResource({ uri: "memo://today" })).contents[0].text;
out.templated = (await client.readResource({ uri: "memo://days/tue" })).contents[0].text;
try {
  await client.readResource({ uri: "memo://days/sun" });
} catch (error) {
  out.missing = [error.code, error.data];
}
const prompt = await client.getPrompt({ name: "reply", arguments: { message: "hi", tone: "formal" } });
out.prompt = prompt.messages.map((m) => m.content.type);
out.promptText = prompt.messages[0].content.text;
try {
  await client.getPrompt({ name: "reply", arguments: {} });
} catch (error) {
  out.promptError = error.code;
}
out.completed = (
  await client.complete({
    ref: { type: "ref/resource", uri: "memo://days/{day}" },
    argument: { name: "day", value: "t" },
  })
).completion.values;
out.promptCompleted = (
  await client.complete({
    ref: { type: "ref/prompt", name: "reply" },
    argument: { name: "tone", value: "f" },
  })
).completion.values;

// The live resource: subscribe, publish until an update arrives on the GET
// stream (it opens in the background), then read the newest value.
await client.subscribeResource({ uri: LIVE });
let celsius = 20;
for (;;) {
  await client.callTool({ name: "publish", arguments: { celsius } });
  const timeout = new Promise((resolve) => setTimeout(() => resolve(false), 500));
  if ((await Promise.race([gotUpdate.then(() => true), timeout])) === true) break;
  celsius += 1;
}
out.published = celsius;
out.newest = JSON.parse((await client.readResource({ uri: LIVE })).contents[0].text);
out.updates = [...new Set(updates)];
await client.unsubscribeResource({ uri: LIVE });
await client.close();
console.log(JSON.stringify(out));
