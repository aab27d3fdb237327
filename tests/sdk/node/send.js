// Sends N calls with known messageIds through a stock SDK, flushes, and prints a JSON
// report ({sdk, sent, errors}) on stdout. Usage: node send.js <segment|rudderstack> <baseUrl> <writeKey> <n>
"use strict";

const [sdk, baseUrl, writeKey, countArg] = process.argv.slice(2);
const count = Number(countArg);
const errors = [];
const sent = [];

function calls(prefix) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const messageId = `${prefix}-${i}`;
    const userId = `user-${i % 7}`;
    if (i % 10 === 1) {
      out.push(["identify", { messageId, userId, traits: { email: `${userId}@example.com` } }]);
    } else if (i % 10 === 2) {
      out.push(["page", { messageId, userId, name: "Docs", properties: { path: "/docs" } }]);
    } else {
      out.push(["track", { messageId, userId, event: "Order Completed", properties: { revenue: i } }]);
    }
  }
  return out;
}

async function segment() {
  const { Analytics } = require("@segment/analytics-node");
  const client = new Analytics({ writeKey, host: baseUrl, flushAt: 50, maxRetries: 3 });
  client.on("error", (err) => errors.push(String(err && (err.reason || err.message || err))));
  for (const [kind, params] of calls("segment-node")) {
    client[kind](params);
    sent.push(params.messageId);
  }
  await client.closeAndFlush({ timeout: 60000 });
}

async function rudderstack() {
  const Analytics = require("@rudderstack/rudder-sdk-node");
  const client = new Analytics(writeKey, {
    dataPlaneUrl: baseUrl,
    flushAt: 50,
    logLevel: "error",
    errorHandler: (err) => errors.push(String(err && (err.message || err))),
  });
  for (const [kind, params] of calls("rudder-node")) {
    client[kind](params, (err) => {
      if (err) errors.push(String(err.message || err));
    });
    sent.push(params.messageId);
  }
  await client.flush();
}

const run = { segment, rudderstack }[sdk];
if (!run) {
  console.error(`unknown sdk ${sdk}`);
  process.exit(2);
}
run()
  .then(() => console.log(JSON.stringify({ sdk, sent, errors })))
  .catch((err) => {
    console.log(JSON.stringify({ sdk, sent, errors: [...errors, String(err)] }));
    process.exit(1);
  });
